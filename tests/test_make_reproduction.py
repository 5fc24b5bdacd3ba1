"""tools/make_reproduction.py: the compute time it quotes per artefact."""

import importlib.util
from pathlib import Path

import pandas as pd

_PATH = Path(__file__).resolve().parent.parent / "tools" / "make_reproduction.py"
_spec = importlib.util.spec_from_file_location("make_reproduction", _PATH)
make_reproduction = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_reproduction)


def _seconds_csv(tmp_path, rows):
    pd.DataFrame(rows, columns=["command", "n_runs", "seconds", "seconds_std",
                                "solve_fallbacks"]).to_csv(tmp_path / "t-cpu-seconds.csv",
                                                           index=False)


def test_compute_time_sums_runs_from_their_mean_and_count(tmp_path):
    # `kipctl report by=command values=seconds` gives the mean per command and the count
    _seconds_csv(tmp_path, [("distill", 4, 30.0, 1.0, 0), ("eval-krr", 10, 6.0, 0.5, 0)])
    assert make_reproduction.compute_time(tmp_path, "t") == "3 min 00 s (sum over 14 run dirs)"


def test_compute_time_of_corrupt_sweeps_counts_every_sweep_and_not_its_cells(tmp_path):
    # three sweeps of 600 s on average (their cells' time is inside them): 30 min, not 10
    _seconds_csv(tmp_path, [("corrupt-sweep", 3, 600.0, 50.0, 0), ("eval-nn", 12, 40.0, 5.0, 0)])
    assert make_reproduction.compute_time(tmp_path, "t") == "30 min 00 s (sum over 3 run dirs)"


def test_compute_time_without_a_record(tmp_path):
    assert make_reproduction.compute_time(tmp_path, "t") == "not recorded"
