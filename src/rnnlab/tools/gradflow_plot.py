"""Overlay the gradient-flow curves of several runs: `python -m rnnlab.tools.gradflow_plot RUN... --out F`.

Each run directory holds `gradient_flow/gradient_flow.csv` (written by the GradientFlow callback);
one curve per run, at the run's first or last measurement.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from rnnlab.utils.io import atomic_write_bytes


def read_curve(run_dir: Path, which: str) -> tuple[int, list[tuple[int, float]]]:
    path = run_dir / "gradient_flow" / "gradient_flow.csv"
    if not path.is_file():
        raise SystemExit(f"error: {path}: no such file; run train.py with callbacks=default first")
    with path.open() as f:
        rows = [
            (int(r["global_step"]), int(r["distance_from_end"]), float(r["grad_norm"]))
            for r in csv.DictReader(f)
        ]
    steps = sorted({r[0] for r in rows})
    step = steps[0] if which == "first" else steps[-1]
    return step, [(d, v) for s, d, v in rows if s == step and v > 0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--labels", nargs="*", help="one label per run (default: folder names)")
    parser.add_argument(
        "--which", choices=["first", "last"], default="first", help="measurement to plot"
    )
    parser.add_argument("--max-distance", type=int, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"error: --labels has {len(labels)} names for {len(args.runs)} runs")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.2))
    for run, label in zip(args.runs, labels):
        step, points = read_curve(run, args.which)
        if args.max_distance is not None:
            points = [p for p in points if p[0] <= args.max_distance]
        ax.plot(*zip(*points), label=f"{label} (step {step})", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the last input step (steps)")
    ax.set_ylabel("||dL/dx_t||, mean over 32 validation sequences")
    ax.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(args.out, buffer.getvalue())
    print(args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
