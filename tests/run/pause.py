"""Test-only callbacks, added to a run with `+callbacks.<name>._target_=tests.run.pause.<Class>`.

PauseAtStep stands still at one training step, so a test can send SIGKILL or SIGTERM at a known
place instead of racing a running process. RecordSteps writes down what the process itself
trained, so a resume test can tell a resumed run from one that silently started over."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class PauseAtStep(Callback):
    """Writes `<epoch> <batch_idx>` to `marker` after optimizer step `step` (and, before it, the
    process id to `<marker>.pid`), then waits there (for an hour at most) until the process is
    killed or receives SIGTERM; Lightning's SIGTERM handler only sets a flag, so the wait polls
    it and returns, and training stops as usual. `rank`: only that global rank stands still
    (the others run on into the next collective and wait there for it).
    It stands still once: a resumed process (which composes the run's saved overrides, this
    callback included) finds the marker and passes the step."""

    def __init__(self, step: int, marker: str, rank: int | None = None) -> None:
        self.step = step
        self.marker = Path(marker)
        self.rank = rank

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step != self.step or self.marker.exists():
            return
        if self.rank is not None and trainer.global_rank != self.rank:
            return
        Path(f"{self.marker}.pid").write_text(str(os.getpid()))
        self.marker.write_text(f"{trainer.current_epoch} {batch_idx}")
        deadline = time.monotonic() + 3600
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)


class RecordSteps(Callback):
    """Writes to `path`, as JSON, when training ends: `first_step` (the global step before this
    process's first training batch), `first_batch` ([epoch, batch_idx] of that batch),
    `batches` (training batches this process ran), `optimizer_steps` (optimizer steps it took)
    `last_step` (the global step it ended at) and `weights` (a SHA-256 of the model's final state
    dict: two runs trained alike, resumed or not, end with the same one on CPU)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.first_step: int | None = None
        self.first_batch: list[int] | None = None
        self.batches = 0
        self.optimizer_steps = 0

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.first_step is None:
            self.first_step = trainer.global_step
            self.first_batch = [trainer.current_epoch, batch_idx]

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Any
    ) -> None:
        self.optimizer_steps += 1

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batches += 1

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        record = {
            "first_step": self.first_step,
            "first_batch": self.first_batch,
            "batches": self.batches,
            "optimizer_steps": self.optimizer_steps,
            "last_step": trainer.global_step,
            "weights": weights_digest(pl_module),
        }
        self.path.write_text(json.dumps(record))


def weights_digest(module: LightningModule) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def record_steps(path: Path) -> list[str]:
    """The overrides that add RecordSteps writing to `path`."""
    return [
        "+callbacks.record_steps._target_=tests.run.pause.RecordSteps",
        f"+callbacks.record_steps.path={path}",
    ]


def read_steps(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


class ModulesAtFirstStep(Callback):
    """Writes which of `watch` (top-level package names) the process has imported by its first
    training step to `out` as JSON, then ends the process: what a start costs is decided by then."""

    def __init__(self, watch: list[str], out: str) -> None:
        self.watch, self.out = list(watch), Path(out)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        import os
        import sys

        self.out.write_text(json.dumps([m for m in self.watch if m in sys.modules]))
        os._exit(0)
