"""The long-range lab's answer: which cell solves which length of a memory task.

Every finished run of a memory task (its metrics.json states the task's `span` T, `chance` and
`solved_at`, as train.py writes them for the adding, copy and selective-copying data) gives, per
task: `<task>_runs.csv`, `<task>_solved.md` (a cell per row, a T per column, the test objective
with a check mark where the run solved it), `<task>_<metric>_vs_T.png` (a line per cell, chance
and the solved threshold marked) and, where the runs kept the GradientFlow callback's data,
`<task>_gradient_flow_T<T>.png` (||dL/dx_t|| of every cell at one T).
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rnnlab.callbacks.gradient_flow import CSV_NAME, plot_curves, read_curve
from rnnlab.models.build import model_objective
from rnnlab.tools.runs import cell_label, finished_runs

CSV_KEYS = ("cell", "T", "test", "solved", "best_val", "train_time_s", "run")
console = Console()


def task_name(data: dict[str, Any]) -> str:
    """`rnnlab.data.SelectiveCopyDataModule` -> `selective_copy`: the run's data module."""
    name = data["_target_"].rsplit(".", 1)[-1].removesuffix("DataModule")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def lab_row(
    run: str, run_dir: Path | None, config: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any] | None:
    """One memory-task run; None for other runs (no chance level in their metrics)."""
    model = config.get("model") or {}
    if metrics.get("chance") is None or not isinstance(model.get("encoder"), dict):
        return None
    metric, mode = model_objective(model)  # val/mse, min
    name = metric.split("/", 1)[1]
    return {
        "task": task_name(config["data"]),
        "cell": cell_label(model),
        "T": metrics.get("span"),
        "metric": name,
        "mode": mode,
        "test": metrics.get(f"test/{name}"),
        "solved": metrics.get("test/solved"),
        "best_val": metrics.get(f"{metric}_best"),
        "chance": metrics["chance"],
        "solved_at": metrics.get("solved_at"),
        "train_time_s": metrics.get("train_time_s"),
        "run": run,
        "run_dir": run_dir,
    }


def collect_lab(roots: list[Path]) -> list[dict[str, Any]]:
    """A row per finished memory-task run under `roots`, by task, cell, then T."""
    rows = [row for r in finished_runs(roots) if (row := lab_row(*r))]
    return sorted(rows, key=lambda r: (r["task"], r["cell"], r["T"] or 0, r["run"]))


def _by_cell_and_length(rows: list[dict[str, Any]], key: str) -> dict[str, dict[int, list[float]]]:
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["T"] is not None and r[key] is not None:
            points[r["cell"]][r["T"]].append(r[key])
    return points


def _levels(rows: list[dict[str, Any]]) -> tuple[float, set[float], str, str]:
    """(chance, solved thresholds, metric, mode) that the task's runs share."""
    first = rows[0]
    thresholds = {r["solved_at"] for r in rows if r["solved_at"] is not None}
    return first["chance"], thresholds, first["metric"], first["mode"]


def _side(mode: str) -> str:
    """Where a solved run's objective lies from the threshold."""
    return "below" if mode == "min" else "above"


def _value(mode: str, value: float) -> str:
    """A loss to 2 significant digits (7e-06, 0.17), an accuracy to 3 decimals."""
    return f"{value:.2g}" if mode == "min" else f"{value:.3f}"


def write_lab_tables(task: str, rows: list[dict[str, Any]], out: Path) -> None:
    """`<task>_runs.csv`: every run; `<task>_solved.md`: runs sharing a point are averaged, and
    the mark then says how many solved."""
    with (out / f"{task}_runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_KEYS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    chance, thresholds, metric, mode = _levels(rows)
    values = _by_cell_and_length(rows, "test")
    solved = _by_cell_and_length(rows, "solved")
    lengths = sorted({t for by_t in values.values() for t in by_t})

    def entry(cell: str, t: int) -> str:
        if t not in values[cell]:
            return ""
        marks = solved[cell].get(t, [])
        hits = sum(m >= 1 for m in marks)
        mark = "" if not hits else " ✓" if hits == len(marks) else f" ✓ {hits}/{len(marks)}"
        return _value(mode, statistics.mean(values[cell][t])) + mark

    limits = " or ".join(f"{t:g}" for t in sorted(thresholds)) or "none set"
    lines = [
        f"Test {metric} of the {task} task by length T (chance {chance:.3g}: an answer blind to "
        f"the input; ✓: solved, {_side(mode)} {limits}; blank: not run)",
        "",
        "| cell | " + " | ".join(f"T={t}" for t in lengths) + " |",
        "|---|" + "--:|" * len(lengths),
        *(f"| {cell} | " + " | ".join(entry(cell, t) for t in lengths) + " |" for cell in values),
    ]
    (out / f"{task}_solved.md").write_text("\n".join(lines) + "\n")
    table = Table(title=f"{task}: test {metric} by T ({len(rows)} runs)")
    table.add_column("cell")
    for t in lengths:
        table.add_column(f"T={t}", justify="right")
    for cell in values:
        table.add_row(cell, *(entry(cell, t) for t in lengths))
    console.print(table)


def _level(ax: Any, y: float, text: str, color: str, linestyle: str, va: str) -> None:
    """A labelled horizontal line across the plot."""
    ax.axhline(y, color=color, linestyle=linestyle, linewidth=1)
    ax.annotate(text, (0.01, y), xycoords=("axes fraction", "data"), va=va, fontsize=8, color=color)


def plot_lab(task: str, rows: list[dict[str, Any]], path: Path) -> None:
    """The test objective against T, a line per cell, chance and the solved threshold marked
    (a loss on a log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chance, thresholds, metric, mode = _levels(rows)
    points = _by_cell_and_length(rows, "test")
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    for cell, by_t in sorted(points.items()):
        ts = sorted(by_t)
        ax.plot(ts, [statistics.mean(by_t[t]) for t in ts], marker="o", label=cell)
    low, high = ("bottom", "top") if mode == "min" else ("top", "bottom")
    _level(ax, chance, f"chance {chance:.3g}", "grey", "--", low)
    for threshold in thresholds:
        _level(ax, threshold, f"solved {_side(mode)} {threshold:g}", "green", ":", high)
    if mode == "min":
        ax.set_yscale("log")
    ax.set_xticks(sorted({t for by_t in points.values() for t in by_t}))
    ax.set_xlabel("length T")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"{task}: test {metric} vs length")
    ax.grid(alpha=0.3)
    # beside the axes, so that no line's end hides under it
    ax.legend(title="cell", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_gradient_flow(task: str, rows: list[dict[str, Any]], length: int, path: Path) -> bool:
    """||dL/dx_t|| against the distance from the end, a line per cell, for the runs at T =
    `length`: at initialisation (left) and at the end of training (right). False when no such
    run kept the GradientFlow callback's data."""
    runs = [
        r
        for r in rows
        if r["T"] == length
        and r["run_dir"] is not None
        and (r["run_dir"] / "gradient_flow" / CSV_NAME).is_file()
    ]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, which, title in zip(axes, ("first", "last"), ("at initialisation", "after training")):
        curves = []
        for r in runs:
            step, points = read_curve(r["run_dir"], which)
            curves.append((f"{r['cell']} (step {step})", points))
        plot_curves(ax, curves, f"{task}, T={length}, {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _longest_shared_length(rows: list[dict[str, Any]]) -> int | None:
    """The longest T that every cell ran."""
    cells = {r["cell"] for r in rows}
    shared = [
        t
        for t in {r["T"] for r in rows}
        if t is not None and cells == {r["cell"] for r in rows if r["T"] == t}
    ]
    return max(shared, default=None)


def report_lab(rows: list[dict[str, Any]], out: Path, length: int | None) -> list[str]:
    """Each task's outputs; `length`: the T of the gradient-flow figures (default: the longest T
    that every cell of the task ran). Returns the files written."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    written = []
    for task, runs in sorted(by_task.items()):
        write_lab_tables(task, runs, out)
        figure = f"{task}_{runs[0]['metric']}_vs_T.png"
        plot_lab(task, runs, out / figure)
        written += [f"{task}_runs.csv", f"{task}_solved.md", figure]
        t = length if length is not None else _longest_shared_length(runs)
        name = f"{task}_gradient_flow_T{t}.png"
        if t is not None and plot_gradient_flow(task, runs, t, out / name):
            written.append(name)
    return written
