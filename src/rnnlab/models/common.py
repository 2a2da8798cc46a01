"""What the classifier and the language model share: optimizers built from Hydra partials, and
the tokenizer riding in every checkpoint."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from rnnlab.models.encoder import CELLS
from rnnlab.models.init import INITS
from rnnlab.utils.errors import check, check_choice

NONLINEARITIES = ("tanh", "relu")


def is_language_model(hparams: Any) -> bool:
    """Only the language model has an output decoder; otherwise both share cell and sizes."""
    return "decoder" in hparams


def check_recurrent_settings(
    cell: str,
    embedding_dim: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    nonlinearity: str,
    init: str,
) -> None:
    """The embedding and encoder settings both models take: one-line errors naming the key."""
    check_choice("model.cell", cell, CELLS)
    for key, value in (
        ("embedding_dim", embedding_dim),
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
    ):
        check(isinstance(value, int) and value >= 1, f"model.{key}", value, "an integer >= 1")
    check(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
    check_choice("model.nonlinearity", nonlinearity, NONLINEARITIES)
    check_choice("model.init", init, INITS)


class PartialsAndTokenizer:
    """A LightningModule mixin. `optimizer_factory` / `scheduler_factory` are Hydra partials
    (`_partial_: true`), so `model.optimizer.lr=...` works from the command line; a scheduler
    that takes `total_steps` (OneCycle) gets the trainer's estimate."""

    optimizer_factory: Callable[..., torch.optim.Optimizer] | None
    scheduler_factory: Callable[..., Any] | None
    tokenizer_json: str | None

    def lr_groups(self) -> list[tuple[list[torch.nn.Parameter], float]]:
        """Optimizer groups: (parameters, share of the configured lr)."""
        return [(list(self.parameters()), 1.0)]

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or torch.optim.Adam
        groups = self.lr_groups()
        scales = [scale for _, scale in groups]
        optimizer = factory(params=[{"params": params} for params, _ in groups])
        for group, scale in zip(optimizer.param_groups, scales):
            group["lr"] *= scale
        if self.scheduler_factory is None:
            return optimizer
        kwargs: dict[str, Any] = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = self.trainer.estimated_stepping_batches
        max_lr = getattr(self.scheduler_factory, "keywords", {}).get("max_lr")
        if isinstance(max_lr, int | float):  # OneCycle sets each group's lr from its max_lr
            kwargs["max_lr"] = [max_lr * scale for scale in scales]
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tokenizer_json"] = self.tokenizer_json

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.tokenizer_json = checkpoint.get("tokenizer_json")
