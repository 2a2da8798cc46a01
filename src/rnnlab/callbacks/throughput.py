"""Real (non-padding) training tokens per second, shown in the progress bar, and on a GPU its
utilisation as NVML reports it (the share of time a kernel ran, over NVML's sampling period).
Also the start-up: seconds from the process's start to its first training batch."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class TokenThroughput(Callback):
    """Times batch-end to batch-end, so data loading and the optimizer step count too."""

    def __init__(self, skip_first: int = 3) -> None:
        self.skip_first = skip_first
        self.rates: list[float] = []
        self.utilisation: list[float] = []
        self._last: float | None = None
        self._seen = 0
        self.startup_s: float | None = None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.startup_s is None:
            self.startup_s = process_age_s()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last, self._seen = None, 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._last is not None and self._seen >= self.skip_first:
            rate = float(batch["lengths"].sum()) * trainer.world_size / (now - self._last)
            self.rates.append(rate)
            pl_module.log("train/tokens_per_s", rate, prog_bar=True, on_step=True, on_epoch=False)
            if pl_module.device.type == "cuda":
                self._sample_utilisation(pl_module.device)
        self._last = now
        self._seen += 1

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last = None  # do not charge validation time to the next training batch

    def _sample_utilisation(self, device: torch.device) -> None:
        # without NVML bindings (pynvml) there is nothing to read
        with contextlib.suppress(ModuleNotFoundError, RuntimeError):
            self.utilisation.append(float(torch.cuda.utilization(device)))

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None

    @property
    def median_utilisation(self) -> float | None:
        return statistics.median(self.utilisation) if self.utilisation else None


def process_age_s() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included), from
    Linux's /proc; None elsewhere."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
