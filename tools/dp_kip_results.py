"""DP-KIP at SCALE=cpu (issue #26 item 4): MNIST, FC1 NTK, support 10 and 100, epsilon in
{1, 2, 8} at delta 1e-5, beside plain KIP from the same noise init and natural subsets, all
scored by KRR on the full test set.

  python tools/dp_kip_results.py --out results/dp [--steps 500] [--target-batch 1000]

Runs kipctl as a user would (one directory per run under --work, resumable: a finished run is
skipped) and writes dp_kip.csv / dp_kip.md, accuracy_vs_epsilon.{png,pdf} and the commands it
ran (commands.txt) to --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from kipctl_driver import REPO, kipctl, metrics
EPSILONS = (1.0, 2.0, 8.0)
SUPPORTS = (10, 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=REPO / "outputs" / "dp-kip")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--target-batch", type=int, default=1000)
    ap.add_argument("--clip", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=1)
    a = ap.parse_args()
    log: list[str] = []
    rows = []
    common = ["dataset=mnist", "kernel=fc1", f"steps={a.steps}",
              f"target_batch={a.target_batch}", "init=noise", "eval_every=0"]
    for seed in range(a.seeds):
        for n in SUPPORTS:
            for eps in (None,) + EPSILONS:
                name = f"n{n}-s{seed}-" + ("kip" if eps is None else f"eps{eps:g}")
                run = a.work / name
                dp = [] if eps is None else [f"dp.epsilon={eps}", "dp.delta=1e-5",
                                             f"dp.clip={a.clip}"]
                if not (run / "summary.json").exists() or \
                        json.loads((run / "summary.json").read_text())["status"] != "done":
                    print(kipctl("distill", *common, f"support={n}", f"seed={seed}", *dp,
                                 f"hydra.run.dir={run}", log=log), flush=True)
                m = metrics(run)
                rows.append({"support": n, "seed": seed,
                             "method": "KIP (noise init)" if eps is None else "DP-KIP",
                             "epsilon": eps, "delta": None if eps is None else 1e-5,
                             "epsilon_spent": m.get("dp/epsilon"),
                             "epsilon_replace_one": m.get("dp/epsilon_replace_one"),
                             "noise_multiplier": m.get("dp/noise_multiplier"),
                             "accuracy": 100 * m["test_accuracy"],
                             "seconds_per_step": m["seconds_per_step"]})
            run = a.work / f"n{n}-s{seed}-natural"
            if not (run / "summary.json").exists():
                print(kipctl("eval-krr", "dataset=mnist", "kernel=fc1", f"support={n}",
                             f"seed={seed}", "source=natural", f"hydra.run.dir={run}",
                             log=log), flush=True)
            m = metrics(run)
            acc = m["accuracy_mean"]  # eval-krr natural: the mean over its seeds
            rows.append({"support": n, "seed": seed, "method": "natural subset",
                         "epsilon": None, "accuracy": 100 * acc})
    df = pd.DataFrame(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out / "dp_kip.csv", index=False)
    table = df.pivot_table(index="support", columns=df.apply(
        lambda r: r["method"] if r["method"] != "DP-KIP" else f"DP-KIP eps={r['epsilon']:g}",
        axis=1), values="accuracy", aggfunc="mean")
    cols = ["natural subset", "KIP (noise init)"] + [f"DP-KIP eps={e:g}" for e in EPSILONS]
    table = table[[c for c in cols if c in table.columns]]
    caption = (f"DP-KIP on MNIST, FC1 NTK: KRR test accuracy (%, full test set) of the learned "
               f"support; {a.steps} steps, expected Poisson batch {a.target_batch} of 60000 "
               f"(q = {a.target_batch / 60000:.4g}), clip {a.clip:g}, delta 1e-5 "
               f"(add-or-remove-one), {a.seeds} seed(s); KIP rows: the same noise init and "
               "steps without DP; natural: a class-balanced random subset")
    (a.out / "dp_kip.md").write_text(f"{caption}\n\n{table.round(2).to_markdown()}\n")
    (a.out / "commands.txt").write_text("\n".join(log) + "\n")
    draw(df, caption, a.out / "accuracy_vs_epsilon")
    print(table.round(2).to_string())


def draw(df: pd.DataFrame, caption: str, stem: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for (n, colour) in zip(SUPPORTS, ("C0", "C1")):
        d = df[(df.support == n) & (df.method == "DP-KIP")].groupby("epsilon").accuracy.mean()
        ax.plot(d.index, d.values, "o-", color=colour, label=f"DP-KIP, {n} images")
        for method, ls in (("KIP (noise init)", "--"), ("natural subset", ":")):
            v = df[(df.support == n) & (df.method == method)].accuracy.mean()
            ax.axhline(v, color=colour, ls=ls, lw=1, label=f"{method}, {n} images")
    ax.set_xscale("log")
    ax.set_xticks(EPSILONS)
    ax.set_xticklabels([f"{e:g}" for e in EPSILONS])
    ax.set_xlabel("epsilon (delta = 1e-5)")
    ax.set_ylabel("KRR test accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title(caption, fontsize=6, wrap=True)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(stem.with_suffix(f".{ext}"), dpi=130)


if __name__ == "__main__":
    main()
