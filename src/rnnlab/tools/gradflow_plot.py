"""Overlay the gradient-flow curves of several runs: `python -m rnnlab.tools.gradflow_plot RUN... --out F`.

Each run directory holds `gradient_flow/gradient_flow.csv` (written by the GradientFlow callback);
one curve per run, at the run's first or last measurement.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from rnnlab.callbacks.gradient_flow import plot_curves, read_curve
from rnnlab.utils.io import atomic_write_bytes


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

    curves = []
    for run, label in zip(args.runs, labels):
        try:
            step, points = read_curve(run, args.which)
        except FileNotFoundError as err:
            raise SystemExit(f"error: {err}") from None
        if args.max_distance is not None:
            points = [p for p in points if p[0] <= args.max_distance]
        curves.append((f"{label} (step {step})", points))
    figure, ax = plt.subplots(figsize=(7, 4.2))
    plot_curves(ax, curves, title=f"gradient flow, {args.which} measurement")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(args.out, buffer.getvalue())
    print(args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
