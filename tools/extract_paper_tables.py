"""Regenerates kip_runner/paper/paper_tables.csv from ../shared/PAPER.md section 7.

    python tools/extract_paper_tables.py ../shared/PAPER.md
Only the values PAPER.md gives are extracted (Tables 1, 2, the A7-A10 rows, and the Table A1
value §8 quotes as "published").
"""

import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "kip_runner" / "paper" / "paper_tables.csv"
HEADER = ("# Published values transcribed from ../shared/PAPER.md section 7 (accuracy %, mean "
          "and std). Only what PAPER.md gives; everything else stays empty in reports.\n")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def support_table(paper: str, title: str, tid: str, dataset: str) -> list[dict]:
    rows, header = [], None
    for line in paper[paper.index(title):].splitlines()[1:]:
        if line.startswith("| method"):
            header = cells(line)[1:]
        elif line.startswith("|---"):
            continue
        elif line.startswith("|") and header:
            method, *values = cells(line)
            for support, value in zip(header, values):
                if "±" in value:
                    mean, std = value.split("±")
                    rows.append(dict(table=tid, dataset=dataset, method=method,
                                     support=int(support), rho=0.0, loss="",
                                     mean=float(mean), std=float(std)))
        elif header:
            break
    return rows


def corruption_tables(paper: str) -> list[dict]:
    rows = []
    for line in paper[paper.index("| table | data | 0% |"):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        tid, data, *values = cells(line)
        name, rest = tid.split(" ", 1)
        method, support = data.rsplit(" ", 1)
        for rho, value in zip((0.0, 0.5, 0.75, 0.9), values):
            mean, std = value.split("±")
            rows.append(dict(table=f"table-{name.lower()}",
                             dataset="mnist" if "MNIST" in rest else "cifar10", method=method,
                             support=int(support), rho=rho,
                             loss="mse" if "MSE" in rest else "xent",
                             mean=float(mean), std=float(std)))
    return rows


def quoted_a1(paper: str) -> list[dict]:
    """§8 quotes Table A1 cells as "(RBF, 10 images: ... vs published 45.3 ± 3.9)"."""
    rows = []
    for kernel, support, mean, std in re.findall(
            r"\((RBF|FC1|Linear), (\d+) images: [^)]*?published ([\d.]+) ± ([\d.]+)\)", paper):
        rows.append(dict(table="table-a1", dataset="mnist", method=kernel.lower(),
                         support=int(support), rho=0.0, loss="", mean=float(mean),
                         std=float(std)))
    return rows


def main(path: str) -> None:
    paper = Path(path).read_text()
    rows = (support_table(paper, "Table 1 — MNIST", "table-1", "mnist")
            + support_table(paper, "Table 2 — CIFAR-10", "table-2", "cifar10")
            + corruption_tables(paper) + quoted_a1(paper))
    with open(OUT, "w", newline="") as f:
        f.write(HEADER)
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} values -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/PAPER.md")
