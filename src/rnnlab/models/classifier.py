"""Many-to-one text classifier: embedding -> encoder -> read-out -> head, one label per text."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    MulticlassAccuracy,
    MulticlassF1Score,
)

from rnnlab.meta import DataMeta
from rnnlab.models.base import NOT_HYPERPARAMETERS, RecurrentModule, check_sizes
from rnnlab.models.components.encoder import Encoder, detach_state
from rnnlab.models.components.readout import Readout
from rnnlab.utils.errors import check, check_choice

TBPTT_LOSSES = ("every", "last")


def _metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Binary: accuracy, F1 and AUROC of the positive class; more classes: accuracy, macro-F1."""
    if num_classes == 2:
        metrics = {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}
    else:
        metrics = {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
    return MetricCollection(metrics, prefix=prefix)


class RNNClassifier(RecurrentModule):
    """The components arrive as partials (conf/model/) and get their sizes here: the data gives
    the vocabulary and the classes, the encoder gives the read-out its input size.

    Two classes: one logit and BCEWithLogitsLoss; more: one logit per class and cross-entropy.
    `tbptt_steps`: truncated BPTT in chunks of that many tokens (manual optimization, one
    optimizer step per chunk).
    """

    def __init__(
        self,
        meta: DataMeta,
        embedding: Callable[..., nn.Module],
        encoder: Callable[..., Encoder],
        readout: Callable[..., Readout],
        head: Callable[..., nn.Module],
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init: str = "default",
        tbptt_steps: int | None = None,
        tbptt_loss: str = "every",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        lr_decay: float = 1.0,
        gradual_unfreezing: bool = False,
    ) -> None:
        super().__init__(meta, optimizer, scheduler, lr_decay, gradual_unfreezing)
        check_sizes(embedding_dim=embedding_dim, hidden_size=hidden_size, num_layers=num_layers)
        check(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
        check(
            tbptt_steps is None or (isinstance(tbptt_steps, int) and tbptt_steps >= 1),
            "model.tbptt_steps",
            tbptt_steps,
            "null (full BPTT) or an integer >= 1",
        )
        check(
            tbptt_steps is None or not bidirectional,
            "model.tbptt_steps",
            tbptt_steps,
            "null with model.bidirectional=true (the reverse pass needs the whole sequence)",
        )
        check_choice("model.tbptt_loss", tbptt_loss, TBPTT_LOSSES)
        check(
            meta.num_classes >= 2,
            "data.num_classes",
            meta.num_classes,
            "at least 2 label names from the data",
        )
        self.save_hyperparameters(ignore=list(NOT_HYPERPARAMETERS))
        self.build_body(
            embedding, encoder, embedding_dim, hidden_size, num_layers, bidirectional, dropout, init
        )
        self.readout = readout(input_size=self.encoder.output_size, bidirectional=bidirectional)
        self.binary = meta.num_classes == 2
        self.head = head(self.readout.output_size, 1 if self.binary else meta.num_classes)
        self.dropout = nn.Dropout(dropout)
        self.tbptt_steps, self.tbptt_loss = tbptt_steps, tbptt_loss
        # Truncated BPTT steps the optimizer once per chunk: Lightning's automatic loop can't.
        self.automatic_optimization = tbptt_steps is None
        self.val_metrics = _metrics(meta.num_classes, "val/")
        self.test_metrics = _metrics(meta.num_classes, "test/")
        self.val_acc_best = MaxMetric()

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Token ids (B, T), right-padded, and lengths (B,) -> logits: (B,) binary, else (B, C)."""
        return self.classify_embedded(self.dropout(self.embedding(input_ids)), lengths)

    def classify_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """From embedded inputs, so diagnostics can ask for the gradient at every input step."""
        outputs, _ = self.encoder(x, lengths)
        return self._logits(self.readout(outputs, lengths))

    def _logits(self, summary: Tensor) -> Tensor:
        logits = self.head(self.dropout(summary)).float()
        return logits.squeeze(-1) if self.binary else logits

    def loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction=reduction)
        return F.cross_entropy(logits, labels.long(), reduction=reduction)

    def probabilities(self, logits: Tensor) -> Tensor:
        """(B,) of the positive class when binary, else (B, C)."""
        return torch.sigmoid(logits) if self.binary else logits.softmax(-1)

    def _predictions(self, logits: Tensor) -> Tensor:
        return (logits > 0).long() if self.binary else logits.argmax(-1)

    def _shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self(batch["input_ids"], batch["lengths"])
        return self.loss(logits, batch["labels"]), logits

    def _log_train(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        acc = (self._predictions(logits) == labels.long()).float().mean()
        size = len(labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/acc", acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        if not self.automatic_optimization:
            return self._tbptt_training_step(batch)
        loss, logits = self._shared_step(batch)
        self.check_finite(loss)
        self._log_train(loss, logits, batch["labels"])
        return loss

    # -- truncated BPTT --------------------------------------------------------------------------

    def _chunk_count(self, length: int) -> int:
        """Every DDP rank must run as many backward passes as the others, or it hangs."""
        count = math.ceil(length / self.tbptt_steps)
        if self._trainer is not None and self.trainer.world_size > 1:
            count = int(
                self.trainer.strategy.reduce(
                    torch.tensor(count, device=self.device), reduce_op="max"
                )
            )
        return count

    def tbptt_losses(self, batch: dict[str, Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (loss, logits) per chunk of `tbptt_steps` tokens; backward each before resuming.

        The carried state and the read-out's carry are detached between chunks, so no gradient
        crosses a chunk boundary. `tbptt_loss=every`: each chunk's loss is the label predicted
        from what has been read so far, over the sequences still running in it; `last`: only
        the final chunk has a loss, earlier chunks only carry the state forward.
        """
        ids, lengths, labels = batch["input_ids"], batch["lengths"], batch["labels"]
        k = self.tbptt_steps
        chunks = self._chunk_count(ids.size(1))
        if chunks * k > ids.size(1):  # another rank's batch is longer: pad to its chunk count
            ids = F.pad(ids, (0, chunks * k - ids.size(1)), value=self.meta.pad_id)
        state, carry = None, None
        for i, chunk in enumerate(ids.split(k, dim=1)):
            chunk_len = (lengths - i * k).clamp(0, k)
            with_grad = self.tbptt_loss == "every" or i == chunks - 1
            with torch.set_grad_enabled(with_grad):
                outputs, state = self.encoder(
                    self.dropout(self.embedding(chunk)), chunk_len.clamp(min=1), state
                )
                summary, carry = self.readout.step(outputs, chunk_len, carry)
                logits = self._logits(summary)
            if with_grad:
                running = (chunk_len > 0).to(logits.device)
                weight = (
                    running.float()
                    if self.tbptt_loss == "every"
                    else torch.ones_like(running, dtype=torch.float)
                )
                per_row = self.loss(logits, labels, reduction="none")
                yield (per_row * weight).sum() / weight.sum().clamp(min=1), logits
            state, carry = detach_state(state), detach_state(carry)

    def _tbptt_training_step(self, batch: dict[str, Tensor]) -> None:
        optimizer = self.optimizers()
        losses, logits = [], None
        for loss, chunk_logits in self.tbptt_losses(batch):
            self.check_finite(loss)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()  # Lightning calls on_before_optimizer_step (the clipping) first
            losses.append(loss.detach())
            logits = chunk_logits.detach()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        self._log_train(torch.stack(losses).mean(), logits, batch["labels"])

    # -- evaluation ----------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits = self._shared_step(batch)
        self.val_metrics.update(logits, batch["labels"].long())
        self.log("val/loss", loss, sync_dist=True, batch_size=len(logits))

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.log_dict(values, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.val_acc_best(values["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute())

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits = self._shared_step(batch)
        self.test_metrics.update(logits, batch["labels"].long())
        self.log("test/loss", loss, sync_dist=True, batch_size=len(logits))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()
