"""Finished runs under some folders, as the report reads them: Hydra run directories
(metrics.json next to .hydra/config.yaml; from train.py, the sweep runner or a multirun) and
offline wandb runs (wandb/offline-run-*/run-*.wandb, e.g. copied back from other machines) that
have no metrics.json beside them."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


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
