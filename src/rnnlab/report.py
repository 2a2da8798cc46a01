"""Turn finished runs into the sweep's answer: a table and two plots.

python -m rnnlab.report logs/sweeps/memory --out logs/sweeps/memory/report

Runs are found anywhere under the given folders: Hydra run directories (metrics.json next to
.hydra/config.yaml; from train.py, the sweep runner or a multirun) and offline wandb runs
(wandb/offline-run-*/run-*.wandb, e.g. copied back from other machines) that have no metrics.json
beside them.
"""

from __future__ import annotations

import argparse
import csv
import json
import struct
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from rnnlab.utils.errors import ConfigError
from rnnlab.utils.task import task_wrapper

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


def _row(run: str, config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any] | None:
    """One table row; None for runs that trained no classifier (e.g. eval runs)."""
    model, data = config.get("model"), config.get("data") or {}
    encoder = model.get("encoder") if isinstance(model, dict) else None
    if not isinstance(encoder, dict) or "readout" not in model:
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


def collect(roots: list[Path]) -> list[dict[str, Any]]:
    """A row per finished run under `roots`, each run once."""
    rows, seen = [], set()
    for root in roots:
        for metrics_file in sorted(root.rglob("metrics.json")):
            run_dir = metrics_file.parent
            config_file = run_dir / ".hydra" / "config.yaml"
            if run_dir in seen or not config_file.is_file():
                continue
            seen.add(run_dir)
            config = yaml.safe_load(config_file.read_text())
            run = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
            row = _row(run, config, json.loads(metrics_file.read_text()))
            rows += [row] if row else []
        for wandb_file in sorted(root.rglob("wandb/*run-*/run-*.wandb")):
            if any(d in seen for d in wandb_file.parents):
                continue  # its run directory's metrics.json already counted
            config, summary, finished = read_wandb_run(wandb_file)
            run = str(wandb_file.parent.relative_to(root))
            row = _row(run, config, summary) if finished else None
            rows += [row] if row else []
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
    ax.set_title(f"IMDB test accuracy vs {label}" + (" (mean over runs)" if averaged else ""))
    ax.grid(alpha=0.3)
    ax.legend(title="cell")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@task_wrapper
def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python -m rnnlab.report",
        description="Table (runs.md, runs.csv) and plots of finished runs.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep, multirun or run folders")
    parser.add_argument("--out", type=Path, required=True, help="where the report goes")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for d in args.dirs:
        if not d.is_dir():
            raise ConfigError(f"{d}: no such folder")
    rows = collect(args.dirs)
    if not rows:
        raise ConfigError(
            f"no finished runs under {' '.join(map(str, args.dirs))} "
            "(looked for metrics.json + .hydra/config.yaml and offline wandb runs)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, args.out)
    plot(rows, "max_len", "max_len (tokens)", args.out / "acc_vs_max_len.png")
    plot(rows, "hidden_size", "hidden size", args.out / "acc_vs_hidden_size.png")
    console.print(
        f"report: {args.out}/runs.md, runs.csv, acc_vs_max_len.png, acc_vs_hidden_size.png"
    )
    return rows


if __name__ == "__main__":
    main()
