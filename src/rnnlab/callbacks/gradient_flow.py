"""How much gradient reaches each time step: ||dL/dx_t|| on a fixed validation batch.

The vanishing gradient made visible: for a vanilla tanh RNN the curve falls off
exponentially with the distance from the end of the sequence; LSTM and GRU keep it flat(ter).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Protocol

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor

from rnnlab.utils.io import atomic_write_bytes, atomic_write_text


class GradientFlowModel(Protocol):
    """What the measurement needs of a task model (both RNNClassifier and RNNLanguageModel
    meet it): the input layer's output for a batch, and the loss computed from it."""

    device: torch.device
    training: bool

    def embed(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """A batch -> x (B, T, E), the input layer's output, and the lengths (B,)."""

    def loss_from_embedded(self, x: Tensor, lengths: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """The batch's mean loss computed from x, so its gradient reaches every x_t."""

    def train(self, mode: bool = True) -> GradientFlowModel: ...


def gradient_per_step(model: GradientFlowModel, batch: dict[str, Tensor]) -> Tensor:
    """Mean over the batch of ||dL/dx_t||, indexed by distance from each sequence's last step.
    x_t is the input layer's output: a token's embedding or a projected input vector."""
    batch = {key: value.to(model.device) for key, value in batch.items()}
    was_training = model.training
    model.train(False)
    try:
        # cuDNN's RNN backward runs in training mode only; eval mode (no dropout) needs the
        # native kernels, which are slower but serve a measurement on a few sequences
        with (
            torch.enable_grad(),
            torch.autocast(model.device.type, enabled=False),
            torch.backends.cudnn.flags(enabled=False),
        ):
            x, lengths = model.embed(batch)
            x = x.detach().float().requires_grad_(True)
            (grad,) = torch.autograd.grad(model.loss_from_embedded(x, lengths, batch), x)
    finally:
        model.train(was_training)
    norms = grad.norm(dim=-1)  # (B, T)
    steps = torch.arange(x.size(1), device=x.device)
    distance = (lengths.unsqueeze(1) - 1 - steps).clamp(min=-1)  # -1 marks padding
    valid = distance >= 0
    total = torch.zeros(x.size(1), device=x.device).index_add_(0, distance[valid], norms[valid])
    count = torch.zeros(x.size(1), device=x.device).index_add_(
        0, distance[valid], torch.ones_like(norms[valid])
    )
    return (total / count.clamp(min=1))[count > 0].cpu()


class GradientFlow(Callback):
    def __init__(
        self, every_n_steps: int = 200, num_sequences: int = 32, dirname: str = "gradient_flow"
    ) -> None:
        self.every_n_steps = every_n_steps
        self.num_sequences = num_sequences
        self.dirname = dirname
        self.rows: list[tuple[int, int, float]] = []
        self.batch: dict[str, Tensor] | None = None
        self._last_step = -1

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "val_dataloader"):
            return
        batch = next(iter(datamodule.val_dataloader()))
        self.batch = {k: v[: self.num_sequences] for k, v in batch.items()}
        self._measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        # ">=", not "%": under truncated BPTT global_step advances by several steps per batch
        if trainer.global_step - self._last_step >= self.every_n_steps:
            self._measure(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._measure(trainer, pl_module)

    def _measure(self, trainer: Trainer, pl_module: LightningModule) -> None:
        step = trainer.global_step
        if self.batch is None or step == self._last_step or not trainer.is_global_zero:
            return
        self._last_step = step
        norms = gradient_per_step(pl_module, self.batch)
        self.rows.extend((step, d, float(v)) for d, v in enumerate(norms))
        out = Path(trainer.default_root_dir) / self.dirname
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["global_step", "distance_from_end", "grad_norm"])
        writer.writerows(self.rows)
        atomic_write_text(out / "gradient_flow.csv", buffer.getvalue())
        figure = self.plot(self.rows, title=f"{type(pl_module.encoder).__name__} gradient flow")
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110, bbox_inches="tight")
        atomic_write_bytes(out / "gradient_flow.png", png.getvalue())
        self._log_image(trainer, figure, step)
        import matplotlib.pyplot as plt

        plt.close(figure)

    @staticmethod
    def plot(rows: list[tuple[int, int, float]], title: str) -> Any:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=(6, 4))
        steps = sorted({r[0] for r in rows})
        colours = plt.cm.viridis([i / max(len(steps) - 1, 1) for i in range(len(steps))])
        for colour, step in zip(colours, steps):
            points = [(d, v) for s, d, v in rows if s == step and v > 0]
            ax.plot(*zip(*points), color=colour, label=f"step {step}", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("distance from the last input step (steps)")
        ax.set_ylabel("||dL/dx_t||")
        ax.set_title(title)
        if len(steps) <= 8:
            ax.legend(fontsize=7)
        return figure

    @staticmethod
    def _log_image(trainer: Trainer, figure: Any, step: int) -> None:
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_figure"):
                experiment.add_figure("gradient_flow", figure, global_step=step)
            elif type(logger).__name__ == "WandbLogger":
                import wandb

                logger.experiment.log(
                    {"gradient_flow": wandb.Image(figure), "trainer/global_step": step}
                )
