"""Turn finished runs into the sweep's answer: tables and plots.

python -m rnnlab.tools.report logs/sweeps/memory --out logs/sweeps/memory/report

Text classification runs give a table of every run and test accuracy against max_len and the
hidden size. Adding-task runs (experiment=adding, e.g. sweeps/long_range.yaml) give test MSE against
the sequence length T, a line per cell with the baseline marked, a table of which cell solved
which T, and ||dL/dx_t|| against the distance from the end for every cell at one T.

Runs are found anywhere under the given folders: Hydra run directories (metrics.json next to
.hydra/config.yaml; from train.py, the sweep runner or a multirun) and offline wandb runs
(wandb/offline-run-*/run-*.wandb, e.g. copied back from other machines) that have no metrics.json
beside them.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import struct
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import get_class
from rich.console import Console
from rich.table import Table

from rnnlab.callbacks.gradient_flow import CSV_NAME, plot_curves, read_curve
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
# the adding task's table, one row per run (the CSV keys)
ADDING_KEYS = ("cell", "seq_len", "test_mse", "solved", "val_mse_best", "train_time_s", "run")
# always answering 1.0, the adding target's mean: E[(X + Y - 1)^2] = 2 Var(U[0, 1]) = 1/6
ADDING_BASELINE = 1 / 6
console = Console()


def _classifies(model: dict[str, Any]) -> bool:
    """A text classifier's run: a read-out and a classification task (the default)."""
    from rnnlab.models.components import Classification

    task = model.get("task") or {"_target_": "rnnlab.models.components.task.Classification"}
    return "readout" in model and issubclass(get_class(task["_target_"]), Classification)


def _is_adding(config: dict[str, Any]) -> bool:
    from rnnlab.data import AddingDataModule

    target = (config.get("data") or {}).get("_target_")
    return bool(target) and issubclass(get_class(target), AddingDataModule)


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


def cell_name(encoder: dict[str, Any]) -> str:
    """`LSTMEncoder` -> `lstm`: the run's encoder class, as the model preset names it."""
    return encoder["_target_"].rsplit(".", 1)[-1].removesuffix("Encoder").lower()


def cell_label(model: dict[str, Any]) -> str:
    """The cell and what sets the run's variant apart from its defaults: `lstm`,
    `rnn, orthogonal init`, `rnn relu, identity init` (the IRNN)."""
    encoder = model["encoder"]
    label = cell_name(encoder)
    if encoder.get("nonlinearity", "tanh") != "tanh":
        label += f" {encoder['nonlinearity']}"
    init = (model.get("init") or {}).get("_target_", "DefaultInit").rsplit(".", 1)[-1]
    if init != "DefaultInit":
        label += f", {init.removesuffix('Init').lower()} init"
    return label


def _adding_row(
    run: str, run_dir: Path | None, config: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any] | None:
    """One adding-task run; None for other runs."""
    if not _is_adding(config) or not isinstance((config.get("model") or {}).get("encoder"), dict):
        return None
    return {
        "cell": cell_label(config["model"]),
        "seq_len": config["data"].get("seq_len"),
        "test_mse": metrics.get("test/mse"),
        "solved": metrics.get("test/solved"),
        "val_mse_best": metrics.get("val/mse_best"),
        "train_time_s": metrics.get("train_time_s"),
        "run": run,
        "run_dir": run_dir,
        "solved_below": (config["model"].get("task") or {}).get("solved_below"),
    }


def _wandb_records(path: Path) -> Iterator[bytes]:
    """The records of a .wandb file (wandb's LevelDB-style log: 32 KiB blocks, 7-byte headers,
    records split FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4); wandb ships no Python reader for it."""
    buf, block, pos, parts = path.read_bytes(), 32768, 7, []
    while pos + 7 <= len(buf):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos : pos + 7])
        if kind == 0:
            return
        data, pos = buf[pos + 7 : pos + 7 + length], pos + 7 + length
        parts = [data] if kind in (1, 2) else [*parts, data]
        if kind in (1, 4):
            yield b"".join(parts)


def read_wandb_run(path: Path) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(config, summary, finished) of an offline wandb run file."""
    from wandb.proto import wandb_internal_pb2 as pb

    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    finished = False
    for data in _wandb_records(path):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            items = (record.run.config if kind == "run" else record.config).update
            config.update(
                {i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in items}
            )
        elif kind == "summary":
            for i in record.summary.update:
                summary[i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
        elif kind == "exit":
            finished = record.exit.exit_code == 0
    return config, summary, finished


def finished_runs(
    roots: list[Path],
) -> Iterator[tuple[str, Path | None, dict[str, Any], dict[str, Any]]]:
    """(run name, run directory or None for a wandb-only run, config, metrics) of every finished
    run under `roots`, each run once."""
    seen: set[Path] = set()
    for root in roots:
        for metrics_file in sorted(root.rglob("metrics.json")):
            run_dir = metrics_file.parent
            config_file = run_dir / ".hydra" / "config.yaml"
            if run_dir in seen or not config_file.is_file():
                continue
            seen.add(run_dir)
            config = yaml.safe_load(config_file.read_text())
            run = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
            yield run, run_dir, config, json.loads(metrics_file.read_text())
        for wandb_file in sorted(root.rglob("wandb/*run-*/run-*.wandb")):
            if any(d in seen for d in wandb_file.parents):
                continue  # its run directory's metrics.json already counted
            config, summary, finished = read_wandb_run(wandb_file)
            if finished:
                yield str(wandb_file.parent.relative_to(root)), None, config, summary


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


def collect_adding(roots: list[Path]) -> list[dict[str, Any]]:
    """A row per finished adding-task run under `roots`, by cell then T."""
    runs = finished_runs(roots)
    rows = [row for r in runs if (row := _adding_row(*r))]
    return sorted(rows, key=lambda r: (r["cell"], r["seq_len"] or 0, r["run"]))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _by_cell_and_length(rows: list[dict[str, Any]], key: str) -> dict[str, dict[int, list[float]]]:
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["seq_len"] is not None and r[key] is not None:
            points[r["cell"]][r["seq_len"]].append(r[key])
    return points


def write_adding_tables(rows: list[dict[str, Any]], out: Path) -> None:
    """adding_runs.csv: every run; adding_solved.md: a cell per row, a T per column, the test
    MSE with a check mark where it is below the solved threshold (runs sharing a point are
    averaged, the mark then says how many solved)."""
    with (out / "adding_runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ADDING_KEYS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    mse = _by_cell_and_length(rows, "test_mse")
    solved = _by_cell_and_length(rows, "solved")
    lengths = sorted({t for by_t in mse.values() for t in by_t})

    def entry(cell: str, t: int) -> str:
        if t not in mse[cell]:
            return ""
        marks = solved[cell].get(t, [])
        hits = sum(m >= 1 for m in marks)
        mark = "" if not hits else " ✓" if hits == len(marks) else f" ✓ {hits}/{len(marks)}"
        return f"{_mean(mse[cell][t]):.2g}{mark}"  # 2 significant digits: 7e-06, 0.17

    lines = [
        f"Test MSE of the adding task by sequence length T (baseline {ADDING_BASELINE:.3f}: "
        "always answering 1.0; ✓: solved, test MSE < the task's threshold)",
        "",
        "| cell | " + " | ".join(f"T={t}" for t in lengths) + " |",
        "|---|" + "--:|" * len(lengths),
        *(f"| {cell} | " + " | ".join(entry(cell, t) for t in lengths) + " |" for cell in mse),
    ]
    (out / "adding_solved.md").write_text("\n".join(lines) + "\n")
    table = Table(title=f"adding task: test MSE by T ({len(rows)} runs)")
    table.add_column("cell")
    for t in lengths:
        table.add_column(f"T={t}", justify="right")
    for cell in mse:
        table.add_row(cell, *(entry(cell, t) for t in lengths))
    console.print(table)


def _level(ax: Any, y: float, text: str, color: str, linestyle: str, va: str) -> None:
    """A labelled horizontal line across the plot."""
    ax.axhline(y, color=color, linestyle=linestyle, linewidth=1)
    ax.annotate(text, (0.01, y), xycoords=("axes fraction", "data"), va=va, fontsize=8, color=color)


def plot_adding(rows: list[dict[str, Any]], path: Path) -> None:
    """Test MSE against T, a line per cell, the baseline and the solved threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _by_cell_and_length(rows, "test_mse")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for cell, by_t in sorted(points.items()):
        ts = sorted(by_t)
        ax.plot(ts, [_mean(by_t[t]) for t in ts], marker="o", label=cell)
    _level(
        ax, ADDING_BASELINE, f"baseline {ADDING_BASELINE:.3f} (always 1.0)", "grey", "--", "bottom"
    )
    for threshold in {r["solved_below"] for r in rows if r["solved_below"] is not None}:
        _level(ax, threshold, f"solved below {threshold:g}", "green", ":", "top")
    ax.set_yscale("log")
    ax.set_xticks(sorted({t for by_t in points.values() for t in by_t}))
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("test MSE")
    ax.set_title("adding task: test MSE vs sequence length")
    ax.grid(alpha=0.3)
    ax.legend(title="cell", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_gradient_flow(rows: list[dict[str, Any]], seq_len: int, path: Path) -> bool:
    """||dL/dx_t|| against the distance from the end, a line per cell, for the runs at T =
    `seq_len`: at initialisation (left) and at the end of training (right). False when no such
    run kept the GradientFlow callback's data."""
    runs = [
        r
        for r in rows
        if r["seq_len"] == seq_len
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
        plot_curves(ax, curves, f"T={seq_len}, {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def report_adding(rows: list[dict[str, Any]], out: Path, seq_len: int | None) -> list[str]:
    """The adding-task outputs; `seq_len`: the T of the gradient-flow figure (default: the
    longest T that every cell ran). Returns the files written."""
    write_adding_tables(rows, out)
    plot_adding(rows, out / "adding_mse_vs_T.png")
    written = ["adding_runs.csv", "adding_solved.md", "adding_mse_vs_T.png"]
    if seq_len is None:
        cells = {r["cell"] for r in rows}
        shared = [
            t
            for t in {r["seq_len"] for r in rows}
            if t is not None and cells == {r["cell"] for r in rows if r["seq_len"] == t}
        ]
        seq_len = max(shared, default=None)
    name = f"adding_gradient_flow_T{seq_len}.png"
    if seq_len is not None and plot_gradient_flow(rows, seq_len, out / name):
        written.append(name)
    return written


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
        help="adding task: the T whose runs the gradient-flow figure compares "
        "(default: the longest T every cell ran)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for d in args.dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: no such folder")
    rows = collect(args.dirs)
    adding = collect_adding(args.dirs)
    if not rows and not adding:
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
    if adding:
        written += report_adding(adding, args.out, args.gradient_flow_T)
    console.print(f"report: {args.out}/" + ", ".join(written))
    return rows + adding


if __name__ == "__main__":
    main()
