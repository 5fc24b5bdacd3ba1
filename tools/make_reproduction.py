"""Writes REPRODUCTION.md from the tables that `make <target> SCALE=cpu` generated.

    python tools/make_reproduction.py [--src results/repro] [--out REPRODUCTION.md]

`make reproduction` first copies outputs/tables/<id>-cpu.* and outputs/figures/<id>-cpu.* into
results/repro/ (committed), then runs this script. Every number in REPRODUCTION.md is read
from those files: our values and the published ones from the report csv files (the paper
columns come from kip_runner/paper/paper_tables.csv via `kipctl report paper=`), wall times
from the <id>-cpu.wall.json files written by tools/timed, captions from the markdown tables.
Only the prose on gaps is written here, per artefact.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kip_runner import paper  # noqa: E402
from kip_runner.runs import tables  # noqa: E402

GAPS = {
    "table-1": [
        "One KIP init per cell and its final checkpoint, 1000 steps; the paper averages 5 "
        "inits x the 5 best checkpoints of 10-20k steps, so its std is over 25 evaluations.",
        "KIP (a+l): 5000 steps with 2000 targets per step, augmented with rotations up to 10 "
        "degrees and shifts up to 5 % of the image (kipctl's MNIST default since 2026-12-04, "
        "passed explicitly when this ran; the default was 10 %; PAPER.md names the shift but gives no range). Three of its four rows are within 2 points of "
        "the paper: FC1-100 -0.27, RBF-10 -0.10, RBF-100 -0.55. FC1-10 is not: 88.75 %, 3.29 "
        "above the paper's 85.46.",
        "What moved it (re-run 2026-11-28; ablation at 1000 steps, "
        "results/repro/ablations/table-1-aug-shift-cpu.csv): the shift range. RBF (a+l) at "
        "support 10 reaches 90.54 / 90.25 / 89.77 / 86.76 / 81.38 % with shifts up to 0 / 2.5 "
        "/ 5 / 7.5 / 10 %, FC1 89.14 / 88.63 / 86.99 / 83.80 / 79.99 % (10 %: "
        "table-1-support10-cpu.csv). Rotation does not matter (RBF without shift: 90.56 / "
        "90.57 / 90.54 % at 0 / 5 / 10 degrees). With the 10 % shift this table had (a+l) FC1 "
        "83.12 / 95.85 and RBF 82.43 / 96.41 % (-2.34 / -1.30 and -8.20 / -1.43); the run "
        "dirs are kept in outputs/repro/cpu-aug-shift0.1/.",
        "Why FC1-10 now overshoots: the paper's FC1 (a+l) at 10 images is 3.8 points below "
        "its own plain KIP (89.30), while its RBF (a+l) is 1.0 above (90.63 vs 89.60). No "
        "shift in the sweep gives both: at 1000 steps the 5 % shift has FC1 86.99 (+1.5) and "
        "RBF 89.77 (-0.9), but FC1 keeps learning to 88.75 by step 5000 and RBF to 90.53. The "
        "5 % shift was picked from that 1000-step sweep on this table's own support-10 cells "
        "(the largest shift that cost RBF-10 under a point), so it is a calibration of a "
        "setting PAPER.md leaves open, not an independent one; the 5000-step rows and Tables "
        "A7/A8 ran after the choice. An (a+l) step took 0.017-0.022 s here at support 10 / "
        "100 (0.11-0.12 s in the 10 % run of 2026-11-27, which predates the augmentation "
        "rewrite 1c25c06 of issue #13), so SCALE=paper's 5 inits x 10k steps are ~15-20 min "
        "per cell on this CPU. The first-make wall time above is this re-run's (the 4 (a+l) "
        "cells; everything else was kept): the table's first full make took 43 min 49 s on "
        "2026-11-27.",
        "The NN row trains a width-1024 FC1 (PAPER.md gives no width for Table 1's NN rows; "
        "Tables A7-A10 use 4096) for 500 steps on the plain KIP images (MSE, centred f - f0, "
        "2 inits).",
        "Label Solve uses all 60k targets and 3 support draws; Myrtle-5 LS rows are not run "
        "on this CPU (a 1000 x 100 Myrtle-5 kernel block takes ~5 h here: GPU only).",
        "Plain KIP FC1 at 1000 steps meets the accuracy checks of the distill issue (support "
        "10: 89.17 >= 89; support 100: 96.03 >= 95.7). The plain KIP rows were last re-run on "
        "2026-11-27 with float64 evaluation of the learned supports (issue #12; 0 solve "
        "fallbacks).",
    ],
    "table-2": [
        "CIFAR-10 test images 0-999 only: a single accuracy near 45 % has a 95 % binomial "
        "interval of about +-3 points (column 95% CI), wider than the 2-point target.",
        "KIP (one init, final checkpoint) trained 3000 steps with 5000 targets per step "
        "(paper: 10k steps, full-batch 50k); KIP (a+l) 2000 steps x 5000 augmented targets, "
        "the (a+l) setting PAPER.md §6 gives for Tables A7-A10 (2k iterations, a tenth of "
        "the training set per batch; for Table 2 it gives 10-20k steps, full batch).",
        "The plain KIP rows are within 2 points at supports 10 and 100: FC1 +0.5 / -1.6, RBF "
        "-1.9 / -0.4, each with the published value inside its binomial interval.",
        "KIP (a+l) is not: 2.0-3.7 points low (FC1 -2.0 / -3.7, RBF -3.1 / -2.8). The "
        "published value is inside the interval for FC1-10 and RBF-100, at its upper end "
        "for RBF-10 (40.3) and 0.6 points above it for FC1-100. One init and its final "
        "checkpoint against the paper's mean over 5 inits x 5 checkpoints.",
        "More steps would not close it at this scale: the runs' test accuracy (every 100 "
        "steps, metrics.jsonl of outputs/repro/cpu/table-2/kip_al) stays within a 1.2-2.0 "
        "point band from step 1300 to 2000: FC1-10 37.9-39.1, FC1-100 47.8-49.4, RBF-10 "
        "36.7-38.0, RBF-100 50.3-52.3 %. What the cpu grid does not have is the paper's 5 "
        "inits with their 5 best checkpoints, and the full 10k test images (the 1000 used "
        "here give +-3 points per number). SCALE=paper (5 inits per cell, same steps) is "
        "about 5 x 12.5 min per support-100 cell on this CPU (0.37 s per step).",
        "The augmentation shift that closed MNIST's gaps (Tables 1, A7, A8) is not the "
        "lever here: at support 10, shifts up to 5 % instead of 10 % (kipctl's colour default) moved (a+l) "
        "FC1 by +0.6 ... +1.5 and RBF by -0.8 ... +0.8 points over steps 500-1000 "
        "(results/repro/ablations/table-2-aug-shift-cpu.csv), inside the +-3-point interval "
        "of 1000 test images, so CIFAR-10 keeps 10 %.",
        "LS (FC1 NNGP, all 50k targets, 3 support draws): +1.9 / +0.8 points. The NN row (FC1 "
        "width 1024, 300 steps, 2 inits, cross-entropy, centred): -1.2 / -5.6 points (PAPER.md "
        "gives no step count or width for Table 2's NN rows). Myrtle-10 LS rows are GPU-only here, "
        "as in Table 1.",
    ],
    "table-a1": [
        "5 resamplings per cell instead of 20; sizes 10 ... 10000 as in the paper. The 10000 "
        "column was added on 2026-11-28 by a second make (7 min 46 s for its 15 float64 "
        "draws, 149-159 s per kernel or ~31 s per draw, with Table A6's make sharing the "
        "cores; the note here had called it a 30-60 min solve, which Table A3's 20 FC1 draws "
        "of 10000 images in 648 s already contradicted).",
        "PAPER.md gives Table A1's layout and one published cell (RBF, 10 images, quoted in "
        "§8), so the other cells have no paper value here.",
        "Every cell is float64 end to end (data, kernel matrices, Cholesky solve at the "
        "paper's ridge 1e-6·tr/n): 0 of 165 solves needed a larger ridge (column "
        "solve_fallbacks). The linear column is the double descent of §8: accuracy falls from "
        "63.4 % at 80 images to its minimum 41.2 % at 640, just below the input dimension "
        "(784), and recovers to 70.7 % at 1280, 83.1 % at 5000 and 85.1 % at 10000 (RBF "
        "97.6 %, FC1 97.3 % there).",
        "Before this run (issue #12) the linear cells from 640 images on came from a "
        "least-squares fallback on a float32 K_ss (a truncated pseudo-inverse, a different "
        "estimator): 70.6 / 79.3 / 83.3 / 85.2 % at 640 / 1280 / 2560 / 5000, now 41.2 / 70.7 "
        "/ 79.5 / 83.1 %. The earlier note that read a dip at 320-640 as the double descent "
        "had its minimum at 320 (53.3 %) only because the fallback lifted 640; the RBF and "
        "FC1 columns moved by at most 0.002 points (2e-5 as a fraction).",
    ],
    "table-a2": [
        "5 resamplings per cell instead of 20; sizes 10 ... 10000 as in the paper; CIFAR-10 test "
        "images 0-999, so each accuracy has a binomial standard error of ~1.5 points on top "
        "of the resampling spread shown.",
        "PAPER.md gives Table A2's layout only, so there is no paper column.",
        "Every cell is float64 end to end; 0 of 165 solves needed a larger ridge. The linear "
        "column shows the double descent around the input dimension (3072): accuracy has a local "
        "maximum of 19.0 % at 80 images, falls to 12.7 % at 2560, and recovers to 18.2 % at 5000 "
        "and 24.7 % at 10000. RBF and FC1 rise monotonically to 44.9 / 46.7 % at 10000.",
        "The first `make` ran sizes up to 2560 (5 min 20 s); 5000 was added to the grid "
        "afterwards and a second `make` computed only those cells (5 min 46 s, under load); "
        "10000 was added on 2026-11-28 by a third (9 min 06 s: 171-189 s per kernel for 5 "
        "float64 draws, with Table A6's make sharing the cores).",
    ],
    "figure-2": [
        "FC1 on MNIST only (the paper's figure also has Myrtle-5/10, Fashion-MNIST and "
        "CIFAR-10); one support draw per point, so no error bars.",
        "Published values exist only where Table 1 reports LS with all targets (support 10, "
        "100, 500).",
        "Re-made from fresh outputs on 2026-11-27 (the run dirs of the first make were not on "
        "this machine any more): all 30 cells equal the committed ones exactly (largest "
        "difference 0.0 points), so the first-make wall time above is that recompute.",
    ],
    "table-a3": [
        "Cut: natural rows from 10000 class-balanced images (paper: all 60000; mean of 20 "
        "draws), KIP (a+l) with 500 images for 300 steps x 6000 augmented targets, shifted up "
        "to 5 % (kipctl's MNIST default since 2026-12-04; then 10 %; Table 1's note) (paper: "
        "10000 images). The paper "
        "column is PAPER.md's full-scale context, so it is not comparable row for row and "
        "there is no delta. PAPER.md's context gives FC1 KIP (a+l) 10k as 99.2, its Table 1 "
        "as 99.26 ± 0.03; the column copies the context.",
        "What the cut shows: 500 KIP (a+l) images beat 10000 natural ones, 20x fewer: FC1 "
        "97.44 vs 97.28 % (+0.16), RBF 97.83 vs 97.53 % (+0.30). In the paper 10000 KIP (a+l) "
        "images beat all 60000 natural ones (FC1 99.2 vs 98.6).",
        "Re-run on 2026-11-28 with the 5 % shift (the KIP cells only; the natural draws were "
        "kept): with the 10 % shift the KIP rows were 96.47 (FC1) and 97.15 % (RBF), 0.8 and "
        "0.4 points below the natural rows. The first-make wall time above is that re-run's "
        "(the natural draws, 20 float64 solves of 10000 images per kernel, took 648 s (FC1) "
        "and 592 s (RBF) on 2026-11-27).",
    ],
    "table-a4": [
        "Cut: natural rows from 5000 class-balanced images (paper: all 50000; mean of 3 "
        "draws), KIP (a+l) with 500 images for 200 steps x 2000 augmented targets (paper: "
        "10000 images, full batch), CIFAR-10 test images 0-999 (binomial standard error ~1.6 "
        "points). The paper column is PAPER.md's full-scale context, with no delta (its FC1 "
        "KIP (a+l) 10k is 64.7 there and 64.6 in its Table 2; the column copies the context).",
        "The paper's direction is visible: 500 KIP (a+l) images beat 10x more natural ones, "
        "FC1 46.6 vs 42.6 % (+4.0) and RBF 48.8 vs 40.6 % (+8.2); in the paper 10000 KIP "
        "(a+l) images beat all 50000 natural ones by 7.1 (FC1) and 13.6 (RBF) points.",
    ],
    "table-a5": [
        "KIP on the paper's FC1-3/Conv1-2 NTK family for this table (one member sampled per "
        "step; PAPER.md §6-7), 10 and 100 images (paper: also 200), 100 KIP steps with 1000 "
        "augmented targets (shifts up to 5 %, kipctl's MNIST default since 2026-12-04) (paper: "
        "thousands); networks FC1 (width 1024) and LeNet, Adam lr 1e-3, cross-entropy, 300 "
        "steps, 2 inits (paper: 5); the two networks train on the same KIP images (cells_dir).",
        "PAPER.md gives Table A5's layout only (no values). The paper's claim that KIP images "
        "trained on the kernel family transfer to finite networks is visible: KIP beats natural "
        "images in all 8 (network, images, rho) comparisons, by +29.2 / +9.3 (FC1, 10 / 100 "
        "images, clean), +10.0 / +24.9 (FC1, rho 0.9), +18.7 / +5.4 (LeNet, clean) and "
        "+9.1 / +22.0 (LeNet, rho 0.9) points.",
        "Re-run on 2026-12-04 with the new MNIST augmentation default (shifts up to 5 %; "
        "issue #25), the whole table from a fresh output directory in one make (10 min 17 s, "
        "with an editor and short tests sharing the 2 cores). Before, with kipctl's old "
        "default of 10 % (the 2026-11-28 run): FC1 KIP 63.2 / 83.4 clean and 30.0 / 67.8 at "
        "rho 0.9, LeNet KIP 60.9 / 83.9 and 37.0 / 69.4. The 5 % shift moved 7 of the 8 KIP "
        "cells up, by +1.5 ... +5.2 points (FC1, 10 images, clean: 63.2 -> 68.4); LeNet at 10 "
        "images and rho 0.9 moved -0.8 (37.0 -> 36.2), inside its ± 8.0 spread over 2 inits. "
        "The natural rows are unchanged (one cell by 0.1: LeNet, 100 images, rho 0.9, 50.4 -> "
        "50.3, recomputed on the new stack).",
        "Earlier: on 2026-11-28 the table was re-run with the paper's family (the cells before "
        "sampled FC1-3/Conv1-3, Figure A1's Avg All family); the KIP rows moved by at most 0.6 "
        "points. The first attempt of this table failed: float32 KIP with the FC2/FC3 members "
        "had a NaN loss (support 100, step 35), fixed in core/kip.py (the square root's "
        "derivative tests the root, not its argument) with regression tests.",
    ],
    "table-a6": [
        "Cut to fit a cpu grid: the paper's 10 / 100 / 200 images and its FC1-3/Conv1-2 "
        "family, but KIP for 100 steps with 1000 targets, networks FC3 (width 1024), Conv2 "
        "with 32 channels (paper: 512) and WRN-16-1 (kipctl's default is WRN-16-4; PAPER.md "
        "gives no size), momentum SGD at a fixed lr 0.01 for 200 steps (paper: lr / L2 / "
        "parameterisation / loss tuned on a grid), 2 inits, CIFAR-10 test images 0-999.",
        "PAPER.md gives Table A6's layout only (no values). KIP images score at or above natural "
        "ones in all 18 (network, images, rho) comparisons. Clean (Conv2 / FC3 / WRN): +8.0 / "
        "+15.8 / +6.3 points with 10 images, +0.4 / +8.2 / +4.8 with 100, +2.2 / +3.6 / +3.4 with "
        "200; at rho 0.9: +4.7 / +7.5 / +8.5, +3.1 / +9.2 / +4.4 and +1.6 / +1.1 / +5.2. The "
        "margin at 200 images is below the one at 10 in all six series (not monotone in between); "
        "Conv2's +0.4 at 100 images (17.8 ± 0.1 vs 17.4 ± 0.3) and FC3's +1.1 at 200 images, rho "
        "0.9 (± 0.8 / ± 1.2) are within about one spread. Every network stays at 8.7-29.5 %: with "
        "200 steps at an untuned lr these networks barely learn from so few images, so the margins "
        "are not the paper's.",
        "Re-run on 2026-11-28 with the paper's family: the earlier cells sampled FC1-3/Conv1-3 "
        "(Figure A1's Avg All family), which PAPER.md does not use for Tables A5/A6. The first "
        "make above recomputed the 6 KIP cells and their 18 network cells (1 h 08 min 52 s, "
        "with the makes of Figure A1 and Tables A1/A2 sharing the cores for its first 40 "
        "min); the natural cells are those of the earlier makes (support 10: 2026-11-27, "
        "100 and 200: 2026-11-28), so the compute time above counts only this make's sweeps. "
        "Against the six-member family the KIP rows moved by -0.6 "
        "... +0.9 points: up most for WRN at 200 images, rho 0.9 (16.0 -> 16.9, ± 1.6), down "
        "most for Conv2 at 100 images, clean (18.4 ± 0.2 -> 17.8 ± 0.1, which took that "
        "row's margin over natural from +1.0 to +0.4).",
        "Cost per cell in that make: KIP 100 steps on the family 51-53 s (10 images), 252-293 "
        "s (100) and 555-620 s (200); networks on the KIP images FC3 49-71 s, Conv2 22-24 / "
        "101-103 / 106-129 s and WRN-16-1 35-41 / 207-251 / 450-455 s at 10 / 100 / 200 "
        "images. A fresh make of the whole grid (natural cells included) is about 1 h 45 "
        "min here, as before the re-run.",
    ],
    "table-a7": [
        "KIP (a) trained 8000 steps with 2000 targets per step (paper: 10k steps, target "
        "batch = half the training set), the targets augmented with rotations up to 10 "
        "degrees and shifts up to 5 % of the image (kipctl's MNIST default since 2026-12-04, "
        "passed explicitly when this ran; the default was 10 %; PAPER.md gives no range). The network is FC1 width 4096 as in the paper, trained 500 steps "
        "(paper: not stated) with 2 inits (paper: 5), on the centred function f(x; w) - f(x; "
        "w0) (without it a natural-1000 FC1 reaches ~54-62% here).",
        "The paper's claim is visible: every KIP (a) row is above its natural row, by +5.1 "
        "(rho 0), +11.1 (0.5), +15.3 (0.75) and +17.1 points (0.9: 92.51 ± 0.12 vs 75.39 ± "
        "0.24; paper +17.7). Against the paper: KIP (a) +2.3 / +0.4 / +1.0 / +0.5, natural "
        "-1.1 / -2.1 / -2.3 / +1.1.",
        "What closed the gap (re-run 2026-11-28): the shift range of the augmentation. With "
        "shifts up to 10 % the same 8000-step grid gave KIP (a) 95.64 / 94.85 / 93.29 / 88.03 "
        "% (the rho-0.9 row 4.0 points under the paper, margin +12.6), and the cells' own KRR "
        "accuracy was 97.15 / 96.17 / 94.56 / 90.61 %, now 97.90 / 97.01 / 95.96 / 93.68 %. A "
        "4000-step rho-0.9 probe measured it first (results/repro/ablations/table-a7-a8-aug-"
        "shift-cpu.csv): KRR 93.18 vs 89.72 %, this network 92.16 vs 87.54 %, Table A8's "
        "89.45 vs 85.45 %. A 10 % shift moves a digit up to 2.8 px; Table 1's support-10 "
        "sweep shows accuracy falling steeply between 5 and 10 % (RBF (a+l) 89.77 -> 81.38 "
        "%): targets shifted that far no longer look like MNIST's centred test digits. The 10 "
        "% run dirs are kept in outputs/repro/cpu-aug-shift0.1/.",
        "Earlier levers, all at the 10 % shift (results/repro/ablations/table-a7-a8-kip-"
        "steps-cpu.csv, table-a7-a8-network-cpu.csv): 4000 -> 8000 KIP steps moved the KIP "
        "(a) rows by +0.15 ... +0.54 points, network width 1024 -> 4096 by +1.4 ... +3.0, and "
        "2000 instead of 500 network steps (width 1024, rho 0.9) by 0.0 (84.54 %; the train "
        "loss is ~4e-11 by step 500).",
        "Under KRR the same cells show the claim in full: at rho 0.9 the KIP_rho (a) support "
        "scores 93.7 % against 72.8 % for natural 1000-image subsets (+20.9; Figure A3).",
        "Wall times: the first make above trained the 4 KIP cells from scratch (8000 steps, "
        "662-826 s each, 0.08-0.10 s/step; a CIFAR-10 probe shared the cores during the first "
        "cell) and their 4 width-4096 network cells (2 inits, 175-180 s each); the natural "
        "cells were kept from 2026-11-27.",
        "Not run: the paper's KIP (a+l) rows (96.3 / 95.9 / 95.1 / 94.6 %) and its 5000- and "
        "10000-image columns. The cpu grid has KIP (a) and natural 1000-image rows only; a "
        "KIP (a+l) cell (learned labels, 2k steps with 6000 targets per PAPER.md §6) would "
        "take ~5 min of KIP (0.13 s per step at 1000 images / 6000 targets in "
        "results/distill/bench.md, more with augmentation) and ~3 min of networks per rho "
        "here, ~45 min for A7 and A8. SCALE=paper does not have these rows either.",
        "A7 and A8 share their KIP cells (cells_dir): the same KIP_rho images feed both, and "
        "their cost is counted under A7.",
    ],
    "figure-a1": [
        "10 and 100 images (paper: also 500), 100 KIP steps with 1000 targets per training "
        "kernel (FC1-3, Conv1-3 NTKs, or the family sampling one of them per step), each "
        "learned set evaluated by KRR with all 12 kernels (FC1-3/Conv1-3, NTK and NNGP) on "
        "MNIST test images 0-999; `mean` averages those 12 accuracies, `std` is their spread.",
        "Transfer is visible at both sizes: every learned set scores 64.2-66.7 % (10 images) "
        "and 86.5-87.9 % (100 images) averaged over the 12 kernels, against 44.3 % and 72.0 % "
        "for natural class-balanced subsets of the same size.",
        "The paper's point that training on the family transfers best shows at 100 images, "
        "not at 10. With 100 images the family set has the highest mean (87.9 %, against "
        "86.5-87.5 % for the single kernels) and the smallest spread across evaluation "
        "kernels (std 0.7 points, against 1.1-2.5); its lead over the best single kernel "
        "(Conv2, 87.5 %) is 0.4 points, smaller than that kernel's spread. With 10 images the "
        "family set (65.0 %) is in the middle of the single kernels (FC1 66.7 %, FC3 64.2 %), "
        "a 2.5-point range about one standard deviation across evaluation kernels wide.",
        "The support-100 cells were added on 2026-11-28 in the first make quoted above "
        "(42 min 26 s, with Tables A5 and A6 running beside it): KIP 100 steps took 4-6 s "
        "(FC1-3), 183 s (Conv1), 394 s (Conv2), 801 s (Conv3) and 306 s (family); the 84 "
        "KRR evaluations of the learned sets 300 s, the 12 of natural subsets (20 draws each) "
        "495 s. "
        "The support-10 cells are those of the first make of 2026-11-27 (6 min 33 s). "
        "500 images would cost roughly 5x the support-100 KIP and 5-25x its evaluations "
        "(conv kernels grow with the support block), several hours here.",
        "Table A5's first run showed FC2/FC3 KIP producing NaN in float32; this figure ran "
        "after the fix (core/kip.py, the square root's derivative).",
    ],
    "table-a9": [
        "Cut to fit the session: KIP (a) 500 steps with 2000 targets (paper: 10k steps, 25k "
        "targets), FC1 width 1024 (paper: 4096) trained 300 steps with 2 inits (paper: 5), "
        "MSE on the centred network, CIFAR-10 test images 0-999 (binomial standard error "
        "~1.5 points per init); support 1000 only (paper: also 5000 and 10000).",
        "The paper's claim is visible: every KIP (a) row is above its natural row, by +15.1 "
        "(rho 0: 46.35 vs 31.25; paper +13.9), +7.5 (0.5: 43.65 vs 36.20; paper +12.4), +8.3 "
        "(0.75: 42.20 vs 33.95; paper +14.0) and +10.7 points (0.9: 38.90 vs 28.25; paper "
        "+16.6).",
        "Against the paper: KIP (a) -1.7 / -3.1 / -3.5 / -5.4, growing with rho: the KIP cells had "
        "500 of the paper's 10k steps, and on MNIST (Table A7, width-1024 network) KIP (a) at rho "
        "0.9 went from 74.26 to 84.53 % between 200 and 4000 steps "
        "(results/repro/ablations/table-a7-a8-kip-steps-cpu.csv). Natural rows -2.9 / +1.9 / +2.3 "
        "/ +0.6; here, as in the paper, natural images at rho 0.5 do not score below clean ones "
        "(36.20 vs 31.25; paper 34.3 vs 34.1).",
        "rho 0.5 and 0.75 were added on 2026-11-28 (they were cut before): the first make "
        "above ran their 2 KIP cells (138 s each, 0.28 s per step) and 4 network cells (~90 s "
        "each); the rho 0 and 0.9 cells were kept.",
        "A9 and A10 share their KIP cells (cells_dir); their cost is counted under A9.",
    ],
    "table-a10": [
        "Same KIP cells and cuts as Table A9 (KIP (a) 500 steps x 2000 targets, FC1 width "
        "1024, 300 steps, 2 inits), cross-entropy on the centred network; support 10000 rows "
        "not run.",
        "Every KIP (a) row is above its natural row, by less than in the paper: +5.9 (rho 0: "
        "43.10 vs 37.25; paper +13.8), +3.4 (0.5: 40.45 vs 37.10; paper +12.2), +5.1 (0.75: "
        "37.65 vs 32.60; paper +15.7) and +5.3 points (0.9: 33.40 vs 28.15; paper +17.8).",
        "KIP (a) is -6.1 / -7.2 / -9.8 / -11.6 points from the paper while the natural rows "
        "are +1.9 / +1.7 / +0.9 / +1.0. The KIP images had 500 of the paper's 10k steps, and "
        "they were learned for the kernel's squared loss: the MSE network of Table A9 makes "
        "more of the same images (46.35 / 43.65 / 42.20 / 38.90) than this cross-entropy one. "
        "On MNIST (Table A8) more KIP steps did not help the cross-entropy network.",
        "The first make above trained only the 4 network cells of rho 0.5 and 0.75 (~85 s "
        "each); the KIP cells are counted under A9.",
    ],
    "figure-a3": [
        "Panels: KRR (FC1 kernel, float64) and the FC1 networks of Tables A7-A10 (MSE and "
        "cross-entropy), MNIST and CIFAR-10, support 1000, rho 0 / 0.5 / 0.75 / 0.9, from the "
        "same KIP_rho (a) cells as those tables (MNIST 8000 KIP steps, CIFAR-10 500); plus an "
        "MNIST support-100 KRR panel (300 KIP steps). MNIST's KIP targets are shifted up to 5 "
        "% (kipctl's MNIST default since 2026-12-04; then 10 %; Table A7's note). Natural points: 5 class-balanced draws "
        "(KRR) or 2 network inits.",
        "The claim is clearest under KRR: at rho 0.9 the KIP_rho (a) images score 93.7 % "
        "against 72.8 % for natural ones on MNIST (support 1000, +20.9 points), 83.3 vs 50.5 "
        "% with 100 images, and 39.4 vs 30.0 % on CIFAR-10 (CIFAR-10 at rho 0 / 0.5 / 0.75: "
        "47.8 / 44.8 / 45.3 vs 33.7 / 35.1 / 33.5). The finite networks keep most of that "
        "margin on MNIST: +17.1 (MSE) and +14.2 points (cross-entropy) with width-4096 "
        "networks (Tables A7/A8); +10.7 / +5.3 on CIFAR-10 with width 1024 (A9/A10).",
        "Re-made on 2026-11-28 with MNIST's 5 % shift: the MNIST panels moved from 90.6 to "
        "93.7 % (support 1000, rho 0.9, KRR) and from 76.0 to 83.3 % (support 100). Its "
        "first-make wall time above is that re-make's: the CIFAR-10 cells and the MNIST "
        "natural cells were kept.",
    ],
    "figure-a4": [
        "Support 10 (one image per class), FC1 KIP (a) for 500 steps with 6000 augmented "
        "targets, shifted up to 5 % (kipctl's MNIST default since 2026-12-04; then 10 %; "
        "Table 1's note) (paper: 10k+ "
        "steps); the rows pair each learned set with the natural images it started from (same "
        "seed; at rho = 0.9 the same frozen noise pixels).",
        "PAPER.md gives the figure's layout only. The table is the learned sets' own KRR test "
        "accuracy (full MNIST test set): 88.2 % clean, 60.1 % at rho = 0.9 (81.1 / 57.0 % "
        "with the 10 % shift, before 2026-11-28). Clean KIP images become blurred class "
        "prototypes; at rho = 0.9 only the 10 % free pixels move, so the learned images still "
        "look like noise, as in the paper.",
    ],
    "dp-kip": [
        "Not in the paper (issue #26; Vinaroz & Park 2023 is the method). One seed per cell, "
        "500 steps (plain KIP tables run 1000s), FC1 only, clip 0.1 chosen on non-private runs "
        "(results/dp/clip_sweep.md); the preprocessing mean / std are computed from the "
        "private training set and treated as public (docs/dp.md).",
        "DP-KIP is 4-6 points below KIP from the same noise init (89.0 / 90.8 %) and far above "
        "natural subsets (45.6 / 76.2 %) at every epsilon. It hardly moves between epsilon 1 "
        "and 8 (85.2 / 85.1 % at support 10; 84.6 / 85.2 % at support 100): at clip 0.1 the "
        "clipping, not the noise, is what costs accuracy (85.1 % at epsilon 1000; clip 1.0 "
        "without noise 88.2 %, but 70.5 % at epsilon 1). The epsilon column is add-or-remove-"
        "one; replace-one (what kipctl audit tests) is 1.83 / 3.12 / 9.46.",
        "At support 100 the learned set gains nothing over support 10 (84.6-85.2 vs "
        "84.9-85.2 %): with 500 steps and per-target clipping the 100 images are under-trained "
        "(plain KIP: 90.8 vs 89.0 %); longer DP runs spend more budget per step.",
    ],
    "figure-a5": [
        "Support 10, FC1 KIP (a) for 300 steps with 2000 augmented targets (paper: 10k+ "
        "steps, full-batch 50k targets), evaluated on CIFAR-10 test images 0-999.",
        "The learned sets reach 37.0 % (clean) and 30.4 % (rho = 0.9) KRR test accuracy; the "
        "clean images turn into saturated colour templates of their class, the rho = 0.9 ones "
        "stay noise-like.",
    ],
    "table-a8": [
        "Same cells and cuts as Table A7 (KIP 8000 steps x 2000 targets shifted up to 5 %, "
        "FC1 width 4096, 500 steps, 2 inits), cross-entropy on the centred network.",
        "The paper's claim is visible: every KIP (a) row is above its natural row, by +3.7, "
        "+8.3, +12.9 and +14.2 points at rho 0 / 0.5 / 0.75 / 0.9 (paper: +4.6 / +8.7 / +11.6 "
        "/ +15.9); at rho 0.9 89.87 ± 0.19 vs 75.67 ± 0.20, so the >= 10 points asked hold. "
        "Against the paper: KIP (a) -1.6 / -1.6 / -0.8 / -1.0, natural -0.7 / -1.2 / -2.1 / "
        "+0.7.",
        "With shifts up to 10 % (kipctl's default then; the grid before 2026-11-28) the margin at "
        "rho 0.9 was +9.1 (KIP (a) 84.73 ± 0.37) and none of these moved it to 10: 4000 "
        "instead of 8000 KIP steps (+9.8; results/repro/ablations/table-a7-a8-kip-steps-"
        "cpu.csv), 1000 / 2000 network steps (+9.6 / +9.9; table-a8-xent-steps-cpu.csv), 6000 "
        "instead of 2000 targets per KIP step (85.22 vs 85.45 %; table-a7-a8-target-batch-"
        "cpu.csv), width 1024 -> 4096 (+7.7 -> +9.8). The 5 % shift moved the rho-0.9 KIP row "
        "by +5.1 points (Table A7's note and table-a7-a8-aug-shift-cpu.csv).",
        "Centring matters for cross-entropy too (results/repro/ablations/"
        "table-a8-xent-center-cpu.csv, rho 0.9, the 10 % cells): uncentred, KIP (a) falls "
        "from 84.74 to 72.36 % (inits 70.38 / 74.34) and natural from 75.68 to 72.56 %, a "
        "margin of -0.2.",
        "The first make above trained only this table's 4 KIP network cells (the 8000-step "
        "KIP cells came from Table A7's make, the natural cells were kept).",
    ],
}

ITEMS = [  # (id, title, table file stem)
    ("table-1", "Table 1 (MNIST): KRR rows at support 10 and 100", "tables"),
    ("table-2", "Table 2 (CIFAR-10): KRR rows at support 10 and 100", "tables"),
    ("table-a1", "Table A1 (MNIST): KRR on natural class-balanced subsets", "tables"),
    ("table-a2", "Table A2 (CIFAR-10): KRR on natural class-balanced subsets", "tables"),
    ("table-a3", "Table A3 (MNIST): natural training data vs KIP (a+l) images", "tables"),
    ("table-a4", "Table A4 (CIFAR-10): natural training data vs KIP (a+l) images", "tables"),
    ("table-a5", "Table A5 (MNIST): networks trained on KIP (kernel family) vs natural images",
     "tables"),
    ("table-a6", "Table A6 (CIFAR-10): networks trained on KIP (kernel family) vs natural "
     "images", "tables"),
    ("table-a7", "Table A7 (MNIST, MSE): FC1 network, Natural 1000 and KIP (a) 1000",
     "tables"),
    ("table-a8", "Table A8 (MNIST, cross-entropy): FC1 network, Natural 1000 and KIP (a) 1000",
     "tables"),
    ("table-a9", "Table A9 (CIFAR-10, MSE): FC1 network, Natural 1000 and KIP (a) 1000",
     "tables"),
    ("table-a10", "Table A10 (CIFAR-10, cross-entropy): FC1 network, Natural 1000 and KIP (a) "
     "1000", "tables"),
    ("figure-2", "Figure 2 (FC1, MNIST): Label Solve vs support size and targets", "figures"),
    ("figure-a1", "Figure A1 (MNIST): KIP on one kernel or the family, evaluated across "
     "kernels", "figures"),
    ("figure-a3", "Figure A3 (MNIST, FC1): KRR accuracy vs corruption, natural vs KIP_ρ (a)",
     "figures"),
    ("figure-a4", "Figure A4 (MNIST): KIP (a) images vs natural, clean and 90 % corrupted",
     "figures"),
    ("figure-a5", "Figure A5 (CIFAR-10): KIP (a) images vs natural, clean and 90 % corrupted",
     "figures"),
]


def duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else \
        f"{s // 60} min {s % 60:02d} s"


def compute_time(src: Path, item: str) -> str:
    """Sum of the runs' own wall times (summary.json `seconds`, via `kipctl report
    by=command values=seconds`, which gives their mean and count per command): what the
    artefact cost, however many make invocations it took. A corrupt-sweep's seconds already
    include its cells', so only the sweeps count where there are any."""
    path = src / f"{item}-cpu-seconds.csv"
    if not path.exists():
        return "not recorded"
    df = pd.read_csv(path)
    if "corrupt-sweep" in set(df.command):
        df = df[df.command == "corrupt-sweep"]
    total = float((df.seconds * df.n_runs).sum())
    return f"{duration(total)} (sum over {int(df.n_runs.sum())} run dirs)"


def wall(src: Path, item: str, which: str = "") -> str:
    """A `make <item> SCALE=cpu` wall time (tools/timed): the last one, or with
    which=".first" the record kept of the first, computing, make."""
    path = src / f"{item}-cpu{which}.wall.json"
    if not path.exists():
        return "not recorded"
    w = json.loads(path.read_text())
    return f"{duration(w['seconds'])} (finished {w['finished']})"


def caption(src: Path, item: str) -> str:
    """The report's caption; the tables here show its accuracy fractions as %."""
    md = src / f"{item}-cpu.md"
    text = md.read_text().splitlines()[0].strip() if md.exists() else ""
    return text.replace("accuracy as fractions", "accuracy in % (fractions in the report)")


def fmt_delta(d) -> str:
    return "" if pd.isna(d) else f"{d:+.2f}"


def paper_rows(src: Path, item: str) -> pd.DataFrame:
    """A `kipctl report paper=` table restricted to the cells we ran."""
    df = pd.read_csv(src / f"{item}-cpu.csv")
    df = df[df["n"].fillna(0) > 0].copy()
    df["delta"] = [fmt_delta(d) for d in df["delta"]]
    df["paper"] = df["paper"].fillna("")
    return df


def table_1(src: Path) -> pd.DataFrame:
    df = paper_rows(src, "table-1")
    df = df[df.support.isin([10, 100])]
    return df[["method", "support", "n", "ours", "paper", "delta"]]


def n_test(src: Path, item: str) -> int | None:
    """The test-set size a table's caption states ("first 1000 test images"), or None."""
    match = re.search(r"first (\d+) test images", caption(src, item))
    return int(match.group(1)) if match else None


def binomial_ci(accuracy_pct: float, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95 % interval (in %) of an accuracy measured on n test images."""
    k = int(round(accuracy_pct / 100 * n))
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return 100 * ci.low, 100 * ci.high


def table_2(src: Path) -> pd.DataFrame:
    """Table 1's layout on CIFAR-10, with the binomial interval of each single-init KRR
    accuracy (the test set is CIFAR-10's first 1000 test images) beside Δ; for the NN rows (a
    few network inits of one KIP set, scored on the same images) the interval of their mean,
    as if one evaluation (the inits' spread is in `ours`)."""
    df = paper_rows(src, "table-2")
    df = df[df.support.isin([10, 100])].copy()
    n = n_test(src, "table-2")
    cis, inside = [], []
    for r in df.to_dict("records"):
        if n is None or not r["ours"] or (r["n"] != 1 and not r["method"].startswith("NN")):
            cis.append(""), inside.append("")
            continue
        lo, hi = binomial_ci(float(r["ours"].split("±")[0]), n)
        cis.append(f"[{lo:.1f}, {hi:.1f}]")
        inside.append("" if not r["paper"] else
                      ("yes" if lo <= float(r["paper"].split("±")[0]) <= hi else "no"))
    df[f"95% CI (n={n})"] = cis
    df["paper in CI"] = inside
    return df[["method", "support", "n", "ours", "paper", "delta", f"95% CI (n={n})",
               "paper in CI"]]


def published(item: str) -> pd.DataFrame:
    """PAPER.md's values of a table (kip_runner/paper/paper_tables.csv); empty if none."""
    return paper.published(item) if item in paper.table_ids() else pd.DataFrame()


def table_a1(src: Path, item: str = "table-a1") -> pd.DataFrame:
    df = pd.read_csv(src / f"{item}-cpu.csv")
    pub = published(item)
    rows = []
    for r in df.to_dict("records"):
        match = pub[(pub.method == r["kernel"]) & (pub.support == r["support"])] \
            if not pub.empty else pub
        p = match.iloc[0] if len(match) else None
        rows.append({"kernel": r["kernel"], "support": int(r["support"]),
                     "ours": tables.pm(r["accuracy_mean"], r["accuracy_std"]),
                     "paper": "" if p is None else tables.pm(p["mean"] / 100, p["std"] / 100),
                     "delta": "" if p is None else
                     fmt_delta(100 * r["accuracy_mean"] - p["mean"]),
                     # solves that needed a larger ridge than asked (issue #12): should be 0
                     "solve fallbacks": r.get(tables.FALLBACKS, "not recorded")})
    return pd.DataFrame(rows)


def figure_2(src: Path) -> pd.DataFrame:
    df = pd.read_csv(src / "figure-2-cpu.csv")
    # one run per cell: the report's column is test_accuracy (test_accuracy_mean with repeats)
    df = df.rename(columns={"test_accuracy": "test_accuracy_mean"})
    pub = paper.published("table-1")
    pub = pub[pub.method == "KRR FC1, LS"].set_index("support")
    n_train = 60000  # MNIST; label-solve records n_targets=null as the training-set size
    df["n_targets"] = df["n_targets"].fillna(n_train)
    df["targets"] = [f"all ({int(n)})" if n >= n_train else int(n) for n in df["n_targets"]]
    rows = []
    for r in df.sort_values(["support", "n_targets"]).to_dict("records"):
        all_targets = r["n_targets"] >= n_train
        p = pub.loc[r["support"]] if all_targets and r["support"] in pub.index else None
        rows.append({"support": int(r["support"]), "targets": r["targets"],
                     "ours": f"{100 * r['test_accuracy_mean']:.2f}",
                     "paper (Table 1, LS)": "" if p is None else f"{p['mean']:.2f} ± {p['std']:.2f}",
                     "delta": "" if p is None else
                     fmt_delta(100 * r["test_accuracy_mean"] - p["mean"])})
    return pd.DataFrame(rows)


def corruption(src: Path, item: str) -> pd.DataFrame:
    df = paper_rows(src, item)
    df = df[df.method.isin(["Natural", "KIP (a)"]) & (df.support == 1000)]
    return df[["method", "support", "rho", "n", "ours", "paper", "delta"]]


def full_data(src: Path, item: str) -> pd.DataFrame:
    """Tables A3/A4: KRR accuracy of the natural training subset (eval-krr) and of the KIP
    (a+l) images (distill), with PAPER.md's full-scale values of the same rows."""
    df = pd.read_csv(src / f"{item}-cpu.csv")
    pub = published(item)
    rows = []
    for r in df.to_dict("records"):
        data = "natural" if r["command"] == "eval-krr" else "KIP (a+l)"
        label = f"KRR {paper.KERNEL_LABEL.get(r['kernel'], r['kernel'])}, {data}"
        match = pub[pub.method == label] if not pub.empty else pub
        p = match.iloc[0] if len(match) else None
        rows.append({"method": label, "images": int(r["support"]),
                     "ours": f"{100 * r['accuracy']:.2f}",
                     "paper images": "" if p is None else int(p["support"]),
                     "paper": "" if p is None else f"{p['mean']:.1f}"})
    return pd.DataFrame(rows)


def report_table(src: Path, item: str) -> pd.DataFrame:
    """A `kipctl report` table as written (Tables A5/A6 and the figures' data): accuracy
    fractions (and the figures' mean / std of accuracies) as %, other floats rounded."""
    df = pd.read_csv(src / f"{item}-cpu.csv")
    df = df.drop(columns=[c for c in ("n_devices", "compile_seconds", "resumed_from",
                                      "reg_effective", "seconds_per_step", "eval_kernels")
                          if c in df])
    for c in df.columns:
        if df[c].dtype.kind == "f":
            # accuracy fractions -> %: the figures' tables name them mean / std
            pct = (("accuracy" in c or c in ("mean", "std"))
                   and df[c].dropna().between(0, 1).all())
            df[c] = [("" if pd.isna(v) else f"{100 * v:.2f}" if pct else f"{v:.4g}")
                     for v in df[c]]
    return df


BUILDERS = {"table-1": table_1, "table-2": table_2, "table-a1": table_a1,
            "table-a2": lambda s: table_a1(s, "table-a2"),
            "table-a3": lambda s: full_data(s, "table-a3"),
            "table-a4": lambda s: full_data(s, "table-a4"),
            "table-a5": lambda s: report_table(s, "table-a5"),
            "table-a6": lambda s: report_table(s, "table-a6"),
            "table-a7": lambda s: corruption(s, "table-a7"),
            "table-a8": lambda s: corruption(s, "table-a8"),
            "table-a9": lambda s: corruption(s, "table-a9"),
            "table-a10": lambda s: corruption(s, "table-a10"),
            "figure-2": figure_2,
            **{f: (lambda s, f=f: report_table(s, f))
               for f in ("figure-a1", "figure-a3", "figure-a4", "figure-a5")}}


def audit_section(src: Path) -> list[str]:
    """The privacy audit (issue #15): the table `kipctl report audit=strongest` wrote, then
    the findings written from results/audit/ (audit.csv, summary.json)."""
    table = src / "audit-cpu.md"
    findings = REPO / "results" / "audit" / "FINDINGS.md"
    lines = ["## Privacy audit (MNIST, FC1, support 100): what KIP and KIP_ρ images reveal", ""]
    if not table.exists() or not findings.exists():
        return lines + ["Not run yet: `make audit SCALE=cpu`.", ""]
    body = table.read_text().splitlines()
    lines += ["- Command: `make audit SCALE=cpu` (docs/audit.md; per-example scores, ROC and "
              "nearest-image figures: results/audit/)",
              f"- Wall time of the first `make` of it: {wall(src, 'audit', '.first')}",
              f"- Wall time of the last `make` of it (attack stage recomputed from cached "
              f"distillations and scores): {wall(src, 'audit')}",
              f"- Caption: {body[0].strip()}",
              "- Its KIP_ρ (a) cells use kipctl's MNIST augmentation default (target shifts up "
              "to 5 %, Table A5's note).", "",
              "Strongest attack per cell, ρ / ε and member group, chosen on the 8 selection "
              "runs and measured on the 8 others (`init`: the members the support was "
              "initialised from; `other`: the rest):", ""]
    lines += [ln for ln in body[1:] if ln.strip()] + [
        "", "![ROC](results/audit/roc.png)", "",
        "![privacy-utility](results/audit/privacy_utility.png)", ""]
    lines += [ln for ln in findings.read_text().splitlines() if not ln.startswith("<!--")]
    return lines + [""]


def dp_section() -> list[str]:
    """DP-KIP at SCALE=cpu (issue #26): results/dp/ (tools/dp_kip_results.py)."""
    src = REPO / "results" / "dp"
    lines = ["## DP-KIP (MNIST, FC1): accuracy at a privacy guarantee", ""]
    if not (src / "dp_kip.md").exists():
        return lines + ["Not run yet: `make dp-kip SCALE=cpu`.", ""]
    caption, table = (src / "dp_kip.md").read_text().split("\n\n", 1)
    lines += ["- Command: `make dp-kip SCALE=cpu` (tools/dp_kip_results.py; docs/dp.md)",
              f"- Caption: {caption.strip()}", "", table.strip(), "",
              "![accuracy vs epsilon](results/dp/accuracy_vs_epsilon.png)", "", "Gaps:", ""]
    lines += [f"- {g}" for g in GAPS["dp-kip"]]
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=REPO / "results" / "repro")
    ap.add_argument("--out", type=Path, default=REPO / "REPRODUCTION.md")
    args = ap.parse_args()
    lines = [
        "# REPRODUCTION: what `SCALE=cpu` gave on this machine",
        "",
        "Generated by `make reproduction` (tools/make_reproduction.py) from the tables in "
        "`results/repro/`, which are copies of what `make <target> SCALE=cpu` wrote to "
        "`outputs/tables/` and `outputs/figures/`. Nothing below is typed by hand except the "
        "gap notes. Machine: 2 CPU cores, no GPU, shared with other work while these ran "
        "(wall times include that). Accuracies in %; Δ = ours − paper in points; the paper "
        "column is empty where PAPER.md gives no value.",
        "",
        "Every target resumes: re-running the same `make` command recomputes nothing that is "
        "done. `SCALE=paper` runs the paper's grid as far as PAPER.md gives it (GPU node or "
        "`LAUNCHER=submitit_slurm`); each caption's paper note says where it still differs.",
        "",
    ]
    missing = []
    for item, title, kind in ITEMS:
        lines += [f"## {title}", ""]
        try:
            frame = BUILDERS[item](args.src)
        except FileNotFoundError as e:
            missing.append(item)
            lines += [f"Not run yet: {e.filename} is missing.", ""]
            continue
        lines += [f"- Command: `make {item} SCALE=cpu`",
                  f"- Compute time of its runs: {compute_time(args.src, item)}",
                  f"- Wall time of the first `make` of it: {wall(args.src, item, '.first')}",
                  f"- Wall time of the last `make` of it (re-run: every run dir says nothing "
                  f"to recompute, then the report): {wall(args.src, item)}",
                  f"- Caption: {caption(args.src, item)}", ""]
        if kind == "figures":
            lines += [f"![{title}, SCALE=cpu](results/repro/{item}-cpu.png)", ""]
        lines += [frame.to_markdown(index=False), "", "Gaps:", ""]
        lines += [f"- {g}" for g in GAPS[item]] + [""]
    lines += dp_section()
    lines += audit_section(args.src)
    args.out.write_text("\n".join(lines))
    print(f"written: {args.out}" + (f" (missing: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
