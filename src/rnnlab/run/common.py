"""Pieces the train and eval runs share."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lightning import Trainer
from rich.console import Console
from rich.table import Table

from rnnlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)


def test_metrics(trainer: Trainer) -> dict[str, float]:
    """Every test/ metric the task logged (test/acc, test/mse, test/recall_acc, ...)."""
    return {
        k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("test/")
    }


def write_metrics(trainer: Trainer, path: Path, metrics: dict[str, Any]) -> None:
    """Rank 0 alone writes, atomically; everyone prints nothing twice."""
    if trainer.global_rank != 0:
        return
    atomic_write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    table = Table(title=str(path))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)
