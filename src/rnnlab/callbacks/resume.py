"""Resume exactly: the train loader's place in the epoch and the global RNG (dropout's) travel in
every checkpoint, so a run killed mid-epoch and resumed lands where an uninterrupted one does."""

from __future__ import annotations

from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class ExactResume(Callback):
    """Lightning saves a stateful train loader's state itself, but drops it on resume when the
    loader was built early (`estimated_stepping_batches`, which OneCycle needs), so it is
    carried here. Both are applied when training starts, after the resumed run's set-up, which
    must not shift the stream the training steps draw from."""

    def __init__(self) -> None:
        self._trainer: Trainer | None = None
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        loader = self._trainer.train_dataloader if self._trainer else None
        if hasattr(loader, "state_dict"):
            state["train_loader"] = loader.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader_state = (self._pending or {}).get("train_loader")
        if loader_state is not None and hasattr(trainer.train_dataloader, "load_state_dict"):
            trainer.train_dataloader.load_state_dict(loader_state)

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending["torch_rng"])
        if "cuda_rng" in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending["cuda_rng"])
        self._pending = None
