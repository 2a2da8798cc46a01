"""A callback for the kill tests: it stands still at one training step, so the test can send
SIGKILL at a known place instead of racing a running process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning import Callback, LightningModule, Trainer


class PauseAtStep(Callback):
    def __init__(self, step: int, marker: str) -> None:
        self.step = step
        self.marker = Path(marker)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            self.marker.write_text(f"{trainer.current_epoch} {batch_idx}")
            time.sleep(3600)
