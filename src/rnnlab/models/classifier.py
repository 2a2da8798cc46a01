"""Sequence model: input layer -> encoder -> read-out -> head -> task, each a component.

By default a many-to-one text classifier (one label per text); the synthetic long-range tasks
swap in other components (conf/data/adding.yaml, copy.yaml): vector inputs through an
`InputProjection`, a regression or a per-step task, a per-step read-out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection

from rnnlab.meta import DataMeta
from rnnlab.models.base import NOT_HYPERPARAMETERS, RecurrentModule, check_sizes
from rnnlab.models.components.encoder import Encoder, detach_state
from rnnlab.models.components.init import DefaultInit
from rnnlab.models.components.readout import Readout
from rnnlab.models.components.task import Classification, Task
from rnnlab.models.components.tbptt_loss import ChunkLoss, EveryChunk
from rnnlab.utils.errors import check


class RNNClassifier(RecurrentModule):
    """The components arrive as partials (conf/model/) and get their sizes here: the data gives
    the input layer its vocabulary or input size, the task its outputs; the encoder gives the
    read-out its input size, the task sizes the head.

    `task` (default: classification, conf/model/common/classifier.yaml) owns the loss, the
    metrics and the objective. `tbptt_steps`: truncated BPTT in chunks of that many steps
    (manual optimization, one optimizer step per chunk; one-per-sequence tasks only).
    """

    def __init__(
        self,
        meta: DataMeta,
        embedding: Callable[..., nn.Module],
        encoder: Callable[..., Encoder],
        readout: Callable[..., Readout],
        head: Callable[..., nn.Module],
        task: Callable[..., Task] = Classification,
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        init: Callable[[Encoder], None] = DefaultInit(),  # noqa: B008 (stateless)
        tbptt_steps: int | None = None,
        tbptt_loss: ChunkLoss = EveryChunk(),  # noqa: B008 (stateless)
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        lr_decay: float = 1.0,
        gradual_unfreezing: bool = False,
        compile_chunk: int | None = None,
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
        self.save_hyperparameters(ignore=list(NOT_HYPERPARAMETERS))
        self.task = task(meta=meta)
        # the task's, on this model: ("val/acc", "max") classifying, ("val/mse", "min") adding
        self.objective = self.task.objective
        check(
            tbptt_steps is None or not self.task.per_step,
            "model.tbptt_steps",
            tbptt_steps,
            f"null for the per-step task {type(self.task).__name__} (its labels span the sequence)",
        )
        self.build_body(
            embedding,
            encoder,
            embedding_dim,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            init,
            compile_chunk,
        )
        self.readout = readout(input_size=self.encoder.output_size, bidirectional=bidirectional)
        check(
            self.readout.per_step == self.task.per_step,
            "model.readout._target_",
            type(self.readout).__name__,
            f"StepReadout for the per-step task {type(self.task).__name__}"
            if self.task.per_step
            else f"a read-out with one vector per sequence for {type(self.task).__name__} "
            "(StepReadout is for per-step tasks)",
        )
        self.head = head(self.readout.output_size, self.task.output_size)
        self.dropout = nn.Dropout(dropout)
        self.tbptt_steps, self.tbptt_loss = tbptt_steps, tbptt_loss
        # Truncated BPTT steps the optimizer once per chunk: Lightning's automatic loop can't.
        self.automatic_optimization = tbptt_steps is None

    @property
    def val_metrics(self) -> MetricCollection:
        return self.task.val_metrics

    @property
    def test_metrics(self) -> MetricCollection:
        return self.task.test_metrics

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Inputs (B, T[, F]) as the input layer reads them (token ids or vectors), right-padded,
        and lengths (B,) -> the task's outputs (e.g. logits: (B,) binary, else (B, C))."""
        return self.classify_embedded(self.dropout(self.embedding(inputs)), lengths)

    def inputs(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch entry the input layer reads (`input_ids` for tokens, `inputs` for vectors)."""
        return batch[self.embedding.input_key]

    def classify_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """From embedded inputs, so diagnostics can ask for the gradient at every input step."""
        outputs, _ = self.encoder(x, lengths)
        return self._logits(self.readout(outputs, lengths))

    def embed(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The input layer's output (B, T, E) and the lengths: the gradient-flow protocol."""
        return self.embedding(self.inputs(batch)), batch["lengths"]

    def loss_from_embedded(self, x: Tensor, lengths: Tensor, batch: dict[str, Tensor]) -> Tensor:
        return self.loss(self.classify_embedded(x, lengths), batch["labels"])

    def _logits(self, summary: Tensor) -> Tensor:
        return self.task.outputs(self.head(self.dropout(summary)).float())

    def loss(self, logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
        return self.task.loss(logits, labels, reduction=reduction)

    def _shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self(self.inputs(batch), batch["lengths"])
        return self.loss(logits, batch["labels"]), logits

    def _log_train(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        size = len(labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name, value in self.task.train_metrics(logits, labels).items():
            self.log(
                f"train/{name}", value, prog_bar=True, on_step=False, on_epoch=True, batch_size=size
            )

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
        crosses a chunk boundary. `tbptt_loss` picks the chunks with a loss and weighs their rows
        (conf/model/tbptt_loss/: `every` chunk's end, or the `last` one only).
        """
        ids, lengths, labels = self.inputs(batch), batch["lengths"], batch["labels"]
        k = self.tbptt_steps
        chunks = self._chunk_count(ids.size(1))
        if chunks * k > ids.size(1):  # another rank's batch is longer: pad to its chunk count
            # (vector inputs (B, T, F) are padded along T, the second-to-last dimension)
            time_pad = (0, 0) * (ids.dim() - 2) + (0, chunks * k - ids.size(1))
            ids = F.pad(ids, time_pad, value=self.meta.pad_id)
        state, carry = None, None
        for i, chunk in enumerate(ids.split(k, dim=1)):
            chunk_len = (lengths - i * k).clamp(0, k)
            with_grad = self.tbptt_loss.has_loss(i, chunks)
            with torch.set_grad_enabled(with_grad):
                outputs, state = self.encoder(
                    self.dropout(self.embedding(chunk)), chunk_len.clamp(min=1), state
                )
                summary, carry = self.readout.step(outputs, chunk_len, carry)
                logits = self._logits(summary)
            if with_grad:
                weight = self.tbptt_loss.row_weights((chunk_len > 0).to(logits.device))
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
        self.task.update(self.val_metrics, logits, batch["labels"])
        self.log("val/loss", loss, sync_dist=True, batch_size=len(logits))

    def on_validation_epoch_end(self) -> None:
        values = self.task.compute(self.val_metrics)
        self.log_dict(values, prog_bar=True)
        if not self.trainer.sanity_checking:
            metric = self.objective[0]  # e.g. val/acc_best: the best epoch so far
            self.task.best(values[metric])
            self.log(f"{metric}_best", self.task.best.compute())

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits = self._shared_step(batch)
        self.task.update(self.test_metrics, logits, batch["labels"])
        self.log("test/loss", loss, sync_dist=True, batch_size=len(logits))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.task.compute(self.test_metrics))
        self.test_metrics.reset()
