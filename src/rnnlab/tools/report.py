"""Turn finished runs into the sweep's answer: tables and plots.

python -m rnnlab.tools.report logs/sweeps/memory --out logs/sweeps/memory/report

Text classification runs give a table of every run and test accuracy against max_len and the
hidden size. Memory-task runs (the adding, copy and selective-copying tasks, e.g.
sweeps/long_range.yaml) give the long-range lab's tables and figures (rnnlab.tools.lab).

Runs are found anywhere under the given folders (rnnlab.tools.runs): Hydra run directories and
offline wandb runs.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import get_class
from rich.console import Console
from rich.table import Table

from rnnlab.tools.lab import collect_lab, report_lab
from rnnlab.tools.runs import cell_name, finished_runs
from rnnlab.utils.entry_point import entry_point
from rnnlab.utils.errors import ConfigError

# (key, Markdown header); the CSV uses the keys
COLUMNS = [
    ("cell", "cell"),
    ("hidden_size", "hidden size"),
    ("max_len", "max_len"),
    ("test_acc", "test acc"),
    ("test_f1", "F1"),
    ("train_time_s", "train time (s)"),
    ("trainable_params", "parameters"),
    ("run", "run"),
]
console = Console()


def _classifies(model: dict[str, Any]) -> bool:
    """A text classifier's run: a read-out and a classification task (the default)."""
    from rnnlab.models.components import Classification

    task = model.get("task") or {"_target_": "rnnlab.models.components.task.Classification"}
    return "readout" in model and issubclass(get_class(task["_target_"]), Classification)


def _row(run: str, config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any] | None:
    """One table row; None for runs that trained no text classifier (e.g. eval runs)."""
    model, data = config.get("model"), config.get("data") or {}
    encoder = model.get("encoder") if isinstance(model, dict) else None
    if not isinstance(encoder, dict) or not _classifies(model):
        return None
    return {
        "cell": cell_name(encoder),
        "hidden_size": model.get("hidden_size"),
        "max_len": data.get("max_len"),
        "test_acc": metrics.get("test/acc"),
        "test_f1": metrics.get("test/f1"),
        "train_time_s": metrics.get("train_time_s"),
        "trainable_params": metrics.get("trainable_params"),
        "run": run,
    }


def collect(roots: list[Path]) -> list[dict[str, Any]]:
    """A row per finished text-classification run under `roots`, each run once."""
    runs = finished_runs(roots)
    rows = [row for run, _, config, metrics in runs if (row := _row(run, config, metrics))]
    return sorted(
        rows,
        key=lambda r: (
            r["cell"],
            r["max_len"] or 0,
            r["hidden_size"] or 0,
        ),
    )


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if key in ("test_acc", "test_f1") else str(value)


def write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    keys = [k for k, _ in COLUMNS]
    with (out / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + "|".join("---" if k in ("cell", "run") else "--:" for k in keys) + "|",
        *("| " + " | ".join(_fmt(k, r[k]) for k in keys) + " |" for r in rows),
    ]
    (out / "runs.md").write_text("\n".join(lines) + "\n")
    table = Table(title=f"{len(rows)} runs")
    for key, header in COLUMNS:
        table.add_column(header, justify="left" if key in ("cell", "run") else "right")
    for r in rows:
        table.add_row(*(_fmt(k, r[k]) for k in keys))
    console.print(table)


def plot(rows: list[dict[str, Any]], x: str, label: str, path: Path) -> None:
    """Test accuracy against `x`, a line per cell; runs sharing a point (other settings differ)
    are averaged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r[x] is not None and r["test_acc"] is not None:
            points[r["cell"]][r[x]].append(r["test_acc"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for cell, by_x in sorted(points.items()):
        xs = sorted(by_x)
        ax.plot(xs, [sum(by_x[v]) / len(by_x[v]) for v in xs], marker="o", label=cell)
    ticks = sorted({v for by_x in points.values() for v in by_x})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy")
    averaged = any(len(accs) > 1 for by_x in points.values() for accs in by_x.values())
    ax.set_title(f"test accuracy vs {label}" + (" (mean over runs)" if averaged else ""))
    ax.grid(alpha=0.3)
    ax.legend(title="cell")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# overrides that say where or how verbosely a run ran, or which seed it drew, not its recipe
NOT_RECIPE = ("seed=", "hydra.", "callbacks.progress_bar=")


def recipe(run_dir: Path) -> str | None:
    """The command that trained a run, from Hydra's record of its overrides, without the seed
    (so seeds of one recipe share a row); None when the run has no such record."""
    file = run_dir / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return None
    overrides = [o for o in yaml.safe_load(file.read_text()) or [] if not o.startswith(NOT_RECIPE)]
    return " ".join(["python train.py", *overrides])


def _spread(values: list[float]) -> str:
    """Mean ± standard deviation in percent; a single value as it is."""
    if len(values) == 1:
        return f"{100 * values[0]:.2f}%"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}%"


def write_recipe_table(roots: list[Path], out: Path) -> bool:
    """commands.md: a row per command (its seeds together: test accuracy as mean ± std), for
    the results tables of README and docs. False when no run has a test accuracy."""
    by_recipe: dict[str, list[tuple[Any, dict[str, Any]]]] = defaultdict(list)
    for run, run_dir, config, metrics in finished_runs(roots):
        trained = _row(run, config, metrics) is not None  # a classifier's training run
        if trained and run_dir and "test/acc" in metrics and (command := recipe(run_dir)):
            by_recipe[command].append((config.get("seed"), metrics))
    if not by_recipe:
        return False
    lines = ["| command | seeds | test acc | train time (s) |", "|---|---|--:|--:|"]
    for command, runs in sorted(by_recipe.items()):
        seeds = ", ".join(str(seed) for seed, _ in sorted(runs, key=lambda r: str(r[0])))
        acc = _spread([m["test/acc"] for _, m in runs])
        times = [m["train_time_s"] for _, m in runs if "train_time_s" in m]
        time = f"{statistics.median(times):.0f}" if times else ""
        lines.append(f"| `{command}` | {seeds} | {acc} | {time} |")
    (out / "commands.md").write_text("\n".join(lines) + "\n")
    return True


@entry_point
def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python -m rnnlab.tools.report",
        description="Tables (runs.md, runs.csv, commands.md) and plots of finished runs.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep, multirun or run folders")
    parser.add_argument("--out", type=Path, required=True, help="where the report goes")
    parser.add_argument(
        "--gradient-flow-T",
        type=int,
        default=None,
        help="memory tasks: the T whose runs the gradient-flow figure compares "
        "(default: the longest T every cell of the task ran)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for d in args.dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: no such folder")
    rows = collect(args.dirs)
    lab = collect_lab(args.dirs)
    if not rows and not lab:
        raise ConfigError(
            f"no finished runs under {' '.join(map(str, args.dirs))} "
            "(looked for metrics.json + .hydra/config.yaml and offline wandb runs)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    if rows:
        write_tables(rows, args.out)
        plot(rows, "max_len", "max_len (tokens)", args.out / "acc_vs_max_len.png")
        plot(rows, "hidden_size", "hidden size", args.out / "acc_vs_hidden_size.png")
        written += ["runs.md", "runs.csv", "acc_vs_max_len.png", "acc_vs_hidden_size.png"]
        if write_recipe_table(args.dirs, args.out):
            written.append("commands.md")
    if lab:
        written += report_lab(lab, args.out, args.gradient_flow_T)
    console.print(f"report: {args.out}/" + ", ".join(written))
    return rows + lab


if __name__ == "__main__":
    main()
