"""Task components: what a sequence model is trained to predict, and how it is scored.

A task sizes the head (`output_size`), shapes the head's output into the task's outputs, and
owns the loss, the predictions, the metrics and the objective (the metric that picks the best
checkpoint). The network below it (input layer -> encoder -> read-out -> head) is the same for
every task, so a new task is one class here and a `model.task` entry in a config.

Labels arrive as the batch's `labels`: class ids, a number per sequence, or (per-step tasks) a
label per step with `IGNORE` where no prediction is scored.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanSquaredError, Metric, MetricCollection, MinMetric
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
)

from rnnlab.meta import DataMeta
from rnnlab.utils.errors import check

# the label of a step that is not scored (cross-entropy's default ignore_index)
IGNORE = -100


class Task(nn.Module, ABC):
    """Built as `task(meta=...)`. `per_step`: one prediction per step (the read-out must keep
    every step, `StepReadout`) rather than one per sequence. `solved_at`: the objective's value
    past which (below it for "min", above for "max") a run counts as solved, logged as
    `<stage>/solved` (1.0 or 0.0); None: no such metric."""

    objective: tuple[str, str]  # (metric, "min" | "max")
    per_step = False

    def __init__(
        self,
        output_size: int,
        metrics: Callable[[], dict[str, Metric]],
        solved_at: float | None = None,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.solved_at = solved_at
        # separate collections: validation and test accumulate over different loops
        self.val_metrics = MetricCollection(metrics(), prefix="val/")
        self.test_metrics = MetricCollection(metrics(), prefix="test/")
        self.best = MaxMetric() if self.objective[1] == "max" else MinMetric()

    @abstractmethod
    def outputs(self, head_output: Tensor) -> Tensor:
        """The head's float32 output -> what `loss`, `predictions` and the metrics take."""

    @abstractmethod
    def loss(self, outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        """`reduction="none"`: one loss per sequence (B,), which truncated BPTT weights."""

    @abstractmethod
    def predictions(self, outputs: Tensor) -> Tensor:
        """Class ids or values, the shape of `labels`."""

    def train_metrics(self, outputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Cheap per-batch scores logged as `train/<name>` beside the loss."""
        return {}

    @abstractmethod
    def describe(self, outputs: Tensor, label_names: tuple[str, ...]) -> list[dict]:
        """One JSON-ready answer per sequence: what predict.py prints."""

    @abstractmethod
    def update(self, metrics: MetricCollection, outputs: Tensor, labels: Tensor) -> None:
        """Feed one batch to `val_metrics` or `test_metrics`."""

    def compute(self, metrics: MetricCollection) -> dict[str, Tensor]:
        values = metrics.compute()
        if self.solved_at is not None:
            metric, mode = self.objective
            value = values[metrics.prefix + metric.split("/", 1)[1]]
            solved = value < self.solved_at if mode == "min" else value > self.solved_at
            values[f"{metrics.prefix}solved"] = solved.float()
        return values


def _class_metrics(num_classes: int) -> dict[str, Metric]:
    """Binary: accuracy, F1 and AUROC of the positive class; more classes: accuracy, macro-F1."""
    if num_classes == 2:
        return {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}
    return {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }


def _check_classes(meta: DataMeta) -> None:
    check(
        meta.num_classes >= 2,
        "data.num_classes",
        meta.num_classes,
        "at least 2 label names from the data",
    )


class Classification(Task):
    """One label per sequence. Two classes: one logit and BCEWithLogitsLoss; more: one logit per
    class and cross-entropy."""

    objective = ("val/acc", "max")

    def __init__(self, meta: DataMeta) -> None:
        _check_classes(meta)
        binary = meta.num_classes == 2
        super().__init__(
            1 if binary else meta.num_classes,
            functools.partial(_class_metrics, meta.num_classes),
        )
        self.binary = binary

    def outputs(self, head_output: Tensor) -> Tensor:
        """(B,) logits when binary, else (B, C)."""
        return head_output.squeeze(-1) if self.binary else head_output

    def loss(self, outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(outputs, labels.float(), reduction=reduction)
        return F.cross_entropy(outputs, labels.long(), reduction=reduction)

    def probabilities(self, outputs: Tensor) -> Tensor:
        """(B,) of the positive class when binary, else (B, C)."""
        return torch.sigmoid(outputs) if self.binary else outputs.softmax(-1)

    def predictions(self, outputs: Tensor) -> Tensor:
        return (outputs > 0).long() if self.binary else outputs.argmax(-1)

    def train_metrics(self, outputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
        return {"acc": (self.predictions(outputs) == labels.long()).float().mean()}

    def describe(self, outputs: Tensor, label_names: tuple[str, ...]) -> list[dict]:
        """Two classes: {"label": "pos", "prob_pos": 0.97}; more: every class's probability."""
        answers = []
        for probs, label in zip(self.probabilities(outputs), self.predictions(outputs)):
            answer: dict = {"label": label_names[int(label)]}
            if self.binary:
                answer[f"prob_{label_names[1]}"] = round(float(probs), 6)
            else:
                answer["probs"] = {n: round(float(p), 6) for n, p in zip(label_names, probs)}
            answers.append(answer)
        return answers

    def update(self, metrics: MetricCollection, outputs: Tensor, labels: Tensor) -> None:
        metrics.update(outputs, labels.long())


class Regression(Task):
    """One number per sequence (the adding task), squared error.

    `solved_below`: a mean squared error under it counts as solved (Le et al. 2015 call the
    adding task solved below 0.01); null: no `<stage>/solved` metric.
    """

    objective = ("val/mse", "min")

    def __init__(self, meta: DataMeta, solved_below: float | None = None) -> None:
        check(
            solved_below is None or (isinstance(solved_below, int | float) and solved_below > 0),
            "model.task.solved_below",
            solved_below,
            "null or a number > 0",
        )
        super().__init__(1, lambda: {"mse": MeanSquaredError()}, solved_at=solved_below)

    def outputs(self, head_output: Tensor) -> Tensor:
        return head_output.squeeze(-1)

    def loss(self, outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        return F.mse_loss(outputs, labels.float(), reduction=reduction)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs

    def describe(self, outputs: Tensor, label_names: tuple[str, ...]) -> list[dict]:
        return [{"value": round(float(v), 6)} for v in outputs]

    def update(self, metrics: MetricCollection, outputs: Tensor, labels: Tensor) -> None:
        metrics.update(outputs, labels.float())


class Recall(Task):
    """A class per step, scored only where a label is given (the copy task's recall steps; the
    others carry `IGNORE`): cross-entropy and accuracy over those steps alone, so the easy blanks
    do not dilute them. Guessing among C symbols scores a loss of log C.

    `solved_above`: a recall accuracy over it counts as solved; null: no `<stage>/solved` metric.
    """

    objective = ("val/recall_acc", "max")
    per_step = True

    def __init__(self, meta: DataMeta, solved_above: float | None = None) -> None:
        _check_classes(meta)
        check(
            solved_above is None
            or (isinstance(solved_above, int | float) and 0 < solved_above < 1),
            "model.task.solved_above",
            solved_above,
            "null or a number between 0 and 1",
        )
        super().__init__(
            meta.num_classes,
            lambda: {"recall_acc": MulticlassAccuracy(meta.num_classes, average="micro")},
            solved_at=solved_above,
        )

    def outputs(self, head_output: Tensor) -> Tensor:
        """(B, T, C) logits."""
        return head_output

    def loss(self, outputs: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        per_step = F.cross_entropy(
            outputs.transpose(1, 2), labels.long(), ignore_index=IGNORE, reduction="none"
        )  # (B, T), 0 where ignored
        scored = (labels != IGNORE).float()
        if reduction == "none":
            return per_step.sum(1) / scored.sum(1).clamp(min=1)
        return per_step.sum() / scored.sum().clamp(min=1)

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(-1)

    def describe(self, outputs: Tensor, label_names: tuple[str, ...]) -> list[dict]:
        """The class predicted at every step."""
        return [{"labels": [label_names[int(i)] for i in row]} for row in self.predictions(outputs)]

    def train_metrics(self, outputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
        scored = labels != IGNORE
        hits = (self.predictions(outputs)[scored] == labels[scored]).float()
        return {"recall_acc": hits.mean()}

    def update(self, metrics: MetricCollection, outputs: Tensor, labels: Tensor) -> None:
        scored = labels != IGNORE
        metrics.update(outputs[scored], labels[scored].long())
