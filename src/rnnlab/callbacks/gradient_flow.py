"""How much gradient reaches each time step: ||dL/dx_t|| on a fixed validation batch.

The vanishing gradient made visible: for a vanilla tanh RNN the curve falls off
exponentially with the distance from the end of the sequence; LSTM and GRU keep it flat(ter).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor

from rnnlab.utils.io import atomic_write_bytes, atomic_write_text

CSV_NAME = "gradient_flow.csv"
# one curve: its legend label and its (distance from the last step, ||dL/dx_t||) points
Curve = tuple[str, list[tuple[int, float]]]


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
        atomic_write_text(out / CSV_NAME, buffer.getvalue())
        figure = self.plot(self.rows, title=f"{type(pl_module.encoder).__name__} gradient flow")
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110, bbox_inches="tight")
        atomic_write_bytes(out / "gradient_flow.png", png.getvalue())
        self._log_image(trainer, figure, step)
        import matplotlib.pyplot as plt

        plt.close(figure)

    @staticmethod
    def plot(rows: list[tuple[int, int, float]], title: str) -> Any:
        """One run's curves, a colour per measurement (dark: early, light: late)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=(6, 4))
        steps = sorted({r[0] for r in rows})
        colours = plt.cm.viridis([i / max(len(steps) - 1, 1) for i in range(len(steps))])
        curves = [(f"step {step}", _points(rows, step)) for step in steps]
        plot_curves(ax, curves, title, colours, legend=len(steps) <= 8)
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


def _points(rows: list[tuple[int, int, float]], step: int) -> list[tuple[int, float]]:
    """One measurement's points; a zero norm (no gradient at all) has no place on a log axis."""
    return [(d, v) for s, d, v in rows if s == step and v > 0]


def read_curve(run_dir: Path, which: str) -> tuple[int, list[tuple[int, float]]]:
    """A run's first or last measurement, from the CSV the callback keeps in its run dir."""
    path = run_dir / "gradient_flow" / CSV_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run train.py with callbacks=default first")
    with path.open() as f:
        rows = [
            (int(r["global_step"]), int(r["distance_from_end"]), float(r["grad_norm"]))
            for r in csv.DictReader(f)
        ]
    steps = sorted({r[0] for r in rows})
    step = steps[0] if which == "first" else steps[-1]
    return step, _points(rows, step)


def plot_curves(
    ax: Any,
    curves: Sequence[Curve],
    title: str,
    colours: Sequence[Any] | None = None,
    legend: bool = True,
) -> None:
    """The one gradient-flow drawing (the callback's figure, `rnnlab.tools.gradflow_plot`, the
    report's): ||dL/dx_t|| on a log axis against the distance from the last input step."""
    for i, (label, points) in enumerate(curves):
        colour = None if colours is None else colours[i]
        ax.plot(*zip(*points), color=colour, label=label, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("distance from the last input step (steps)")
    ax.set_ylabel("||dL/dx_t||, mean over the measured sequences")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
