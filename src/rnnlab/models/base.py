"""What every rnnlab LightningModule shares, so a new task model gets it by subclassing:

- the optimizer and scheduler, built from Hydra partials (`_partial_: true`);
- layer groups (embedding, each recurrent depth, everything above), which give discriminative
  learning rates (`lr_decay`) and gradual unfreezing;
- model-side gradient clipping with `train/grad_norm` and `train/clip_frac`, and the stop on a
  non-finite loss or gradient;
- the data facts (`DataMeta`) and the model's own config in every checkpoint, so that
  `model_from_checkpoint` rebuilds it from the checkpoint alone.

A subclass sets `self.embedding` (its input layer) and `self.encoder` (an `Encoder`) in its
constructor.
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn

from rnnlab.meta import DataMeta
from rnnlab.models.components.encoder import Encoder
from rnnlab.utils.errors import ConfigError, check

log = logging.getLogger(__name__)

# the constructor arguments that are components or data, not settings to log
NOT_HYPERPARAMETERS = (
    "meta",
    "embedding",
    "encoder",
    "init",
    "decoder",
    "tbptt_loss",
    "readout",
    "head",
    "task",
    "optimizer",
    "scheduler",
)


class TrainingDiverged(ConfigError):
    """A non-finite loss or gradient: stop before any NaN reaches the weights or a checkpoint."""


def check_sizes(**sizes: int) -> None:
    for key, value in sizes.items():
        check(isinstance(value, int) and value >= 1, f"model.{key}", value, "an integer >= 1")


class RecurrentModule(LightningModule):
    embedding: nn.Module
    encoder: Encoder
    # (metric, "min" | "max"): what a run monitors and a search optimises unless cfg.objective says
    objective: tuple[str, str] = ("val/acc", "max")

    def __init__(
        self,
        meta: DataMeta,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        lr_decay: float = 1.0,
        gradual_unfreezing: bool = False,
    ) -> None:
        super().__init__()
        check(
            isinstance(lr_decay, int | float) and lr_decay >= 1,
            "model.lr_decay",
            lr_decay,
            "a number >= 1 (each layer group below the top learns at lr / lr_decay^depth)",
        )
        self.meta = meta
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.lr_decay = lr_decay
        self.gradual_unfreezing = gradual_unfreezing
        self.config: dict[str, Any] | None = None  # set by build_model, stored in checkpoints
        # The model clips, not Lightning: the train task routes trainer.gradient_clip_* here.
        self.clip_val: float | None = None
        self.clip_algorithm = "norm"
        self._optimizer_steps, self._clipped_steps = 0, 0

    def build_body(
        self,
        embedding: Callable[..., nn.Module],
        encoder: Callable[..., Encoder],
        embedding_dim: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        init: Callable[[Encoder], None],
        compile_chunk: int | None = None,
    ) -> None:
        """Complete the input-layer and encoder partials with their sizes (the components'
        constructor contract), apply `model.init` to the encoder and, with `compile_chunk`,
        have it compile its recurrence in chunks of that many steps."""
        check(
            compile_chunk is None or (isinstance(compile_chunk, int) and compile_chunk >= 1),
            "model.compile_chunk",
            compile_chunk,
            "null (eager) or an integer >= 1 (steps per compiled call)",
        )
        self.embedding = embedding(meta=self.meta, embedding_dim=embedding_dim)
        self.encoder = encoder(
            input_size=embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        self.encoder.initialise(init)
        if compile_chunk is not None:
            self.encoder.compile_recurrence(compile_chunk)

    # -- layer groups: discriminative learning rates and gradual unfreezing -------------------

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Bottom to top: the embedding, each recurrent depth, then every other parameter (the
        read-out, the head, a decoder), so that no parameter is ever left out of the optimizer."""
        groups = [list(self.embedding.parameters()), *self.encoder.layer_groups()]
        seen = {id(p) for group in groups for p in group}
        return [*groups, [p for p in self.parameters() if id(p) not in seen]]

    def lr_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """(parameters, share of the configured lr). With lr_decay > 1 (ULMFiT's discriminative
        fine-tuning) each group below the top learns at 1/lr_decay of the one above it."""
        if self.lr_decay == 1:
            return [(list(self.parameters()), 1.0)]
        groups = [g for g in self.layer_groups() if g]
        return [(group, self.lr_decay ** (i + 1 - len(groups))) for i, group in enumerate(groups)]

    def unfreeze_for_epoch(self, epoch: int) -> None:
        """Gradual unfreezing: epoch e trains the top e + 1 layer groups, the rest stay frozen."""
        groups = self.layer_groups()
        frozen = max(0, len(groups) - 1 - epoch)
        for i, group in enumerate(groups):
            for param in group:
                param.requires_grad_(i >= frozen)

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or torch.optim.Adam
        groups = self.lr_groups()
        optimizer = factory(params=[{"params": params} for params, _ in groups])
        for group, (_, scale) in zip(optimizer.param_groups, groups):
            group["lr"] *= scale
        if self.scheduler_factory is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.build_scheduler(optimizer), "interval": "step"},
        }

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """A scheduler that takes `total_steps` (OneCycle) gets the trainer's estimate of this
        run's length, and a `max_lr` per group scaled like the groups' lr."""
        kwargs: dict[str, Any] = {}
        given = getattr(self.scheduler_factory, "keywords", {})
        parameters = inspect.signature(self.scheduler_factory).parameters
        if "total_steps" in parameters:
            total = kwargs["total_steps"] = self.trainer.estimated_stepping_batches
            pct_start = given.get(
                "pct_start", getattr(parameters.get("pct_start"), "default", None)
            )
            if isinstance(pct_start, float) and pct_start * total == 1:
                # OneCycle divides by zero when its warm-up ends at exactly step 0; any shorter
                # warm-up means the same, none: the schedule starts at max_lr and anneals
                kwargs["pct_start"] = 0.5 / total
        max_lr = given.get("max_lr")
        if isinstance(max_lr, int | float):  # OneCycle sets each group's lr from its max_lr
            kwargs["max_lr"] = [max_lr * scale for _, scale in self.lr_groups()]
        return self.scheduler_factory(optimizer=optimizer, **kwargs)

    def on_train_start(self) -> None:
        """A run resumed with another length (trainer.max_epochs raised, say) follows, from the
        step it is at, the schedule a run planned for the new length follows; the checkpoint's
        schedule would end at the old length (OneCycle refuses to step past it)."""
        configs = self.trainer.lr_scheduler_configs
        if not configs or not hasattr(configs[0].scheduler, "total_steps"):
            return
        planned, step = configs[0].scheduler.total_steps, configs[0].scheduler.last_epoch
        total = self.trainer.estimated_stepping_batches
        if planned == total or step >= total:
            return
        scheduler = self.build_scheduler(configs[0].scheduler.optimizer)
        scheduler.last_epoch = step - 1
        with warnings.catch_warnings():  # no optimizer step has run in this process yet
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            scheduler.step()  # sets each group's lr (and momentum) for `step` on the new schedule
        configs[0].scheduler = scheduler
        log.info("The schedule was planned for %d steps; it now ends at step %d", planned, total)

    def on_fit_start(self) -> None:
        # by now the strategy has wrapped the model (torch's DistributedDataParallel under DDP)
        find_unused = getattr(self.trainer.strategy.model, "find_unused_parameters", False)
        if self.gradual_unfreezing and self.trainer.world_size > 1 and not find_unused:
            raise ConfigError(
                "model.gradual_unfreezing=True: frozen layers get no gradient, which DDP waits for; "
                "use trainer.strategy=ddp_find_unused_parameters_true"
            )

    def on_train_epoch_start(self) -> None:
        self._optimizer_steps, self._clipped_steps = 0, 0
        if self.gradual_unfreezing:
            self.unfreeze_for_epoch(self.current_epoch)

    # -- clipping and the divergence stop ------------------------------------------------------

    def check_finite(self, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"train/loss={loss.item()} at global step {self.global_step} (epoch {self.current_epoch}): "
                "training stopped, last.ckpt keeps the last good state; try trainer.gradient_clip_val=1.0 "
                "or a lower model.optimizer.lr"
            )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Runs after unscaling under 16-mixed, so the norm and the clipping see true gradients.
        One norm serves the divergence check, the log and the clipping."""
        params = [p for p in self.parameters() if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        norm = nn.utils.get_total_norm(grads, foreach=True)
        value = norm.item()
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if not math.isfinite(value) and scaler is None:
            # (under 16-mixed the grad scaler skips such steps itself and lowers its scale)
            raise TrainingDiverged(
                f"train/grad_norm={value} at global step {self.global_step} (epoch {self.current_epoch}): "
                "training stopped before the weights were touched; try trainer.gradient_clip_val=1.0 "
                "or a lower model.optimizer.lr"
            )
        clipped = False
        if self.clip_val:
            if self.clip_algorithm == "value":  # Lightning's enum compares equal to its string
                clipped = any(bool((g.abs() > self.clip_val).any()) for g in grads)
                nn.utils.clip_grad_value_(params, self.clip_val, foreach=True)
            elif value > self.clip_val:
                clipped = True
                nn.utils.clip_grads_with_norm_(params, self.clip_val, norm, foreach=True)
        self._optimizer_steps += 1
        self._clipped_steps += clipped
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.log("train/grad_norm", value, on_step=True, on_epoch=False)

    def on_train_epoch_end(self) -> None:
        if self._optimizer_steps:
            self.log("train/clip_frac", self._clipped_steps / self._optimizer_steps)

    # -- checkpoints ---------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["meta"] = self.meta.to_dict()
        checkpoint["model_config"] = self.config
