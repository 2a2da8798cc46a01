"""Many-to-one sentiment classifier wrapping nn.RNN / nn.LSTM / nn.GRU."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from rnnlab.data.sampler import start_epoch
from rnnlab.models.common import (
    PartialsAndTokenizer,
    check_recurrent_settings,
    is_language_model,
)
from rnnlab.models.encoder import (
    POOLINGS,
    RecurrentEncoder,
    RunningPool,
    detach_state,
    pool,
    pooled_size,
)
from rnnlab.models.init import init_recurrent
from rnnlab.models.pretrained import load_language_model
from rnnlab.utils.errors import ConfigError, check, check_choice

log = logging.getLogger(__name__)

TBPTT_LOSSES = ("every", "last")
EMBEDDING_INITS = ("normal", "uniform")
CLIP_ALGORITHMS = ("norm", "value")


class TrainingDiverged(ConfigError):
    """A non-finite loss or gradient: stop before any NaN reaches the weights or a checkpoint."""


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}, prefix=prefix
    )


class RNNClassifier(PartialsAndTokenizer, LightningModule):
    """Embedding -> recurrent encoder -> masked pooling -> one logit (BCEWithLogitsLoss).

    `vocab_size` and `pad_id` come from the data module; the tokenizer JSON rides in every
    checkpoint so that prediction needs the checkpoint alone. `pretrained`: a language-model
    checkpoint whose embedding and recurrent layers it starts from (same tokenizer required).
    """

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        cell: str = "lstm",
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
        pooling: str = "max",
        init: str = "default",
        embedding_init: str = "normal",
        forget_bias: float | None = None,
        tbptt_steps: int | None = None,
        tbptt_loss: str = "every",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        tokenizer_json: str | None = None,
        pretrained: str | None = None,
        lr_decay: float = 1.0,
        gradual_unfreezing: bool = False,
    ) -> None:
        super().__init__()
        check_recurrent_settings(
            cell, embedding_dim, hidden_size, num_layers, dropout, nonlinearity, init
        )
        check_choice("model.pooling", pooling, POOLINGS)
        check_choice("model.embedding_init", embedding_init, EMBEDDING_INITS)
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
            isinstance(lr_decay, int | float) and lr_decay >= 1,
            "model.lr_decay",
            lr_decay,
            "a number >= 1 (each layer group below the head learns at lr / lr_decay^depth)",
        )
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "tokenizer_json"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.tokenizer_json = tokenizer_json

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        if (
            embedding_init == "uniform"
        ):  # Keras' default, U(-0.05, 0.05): small inputs keep tanh unsaturated
            with torch.no_grad():
                nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
                self.embedding.weight[pad_id] = 0
        self.encoder = RecurrentEncoder(
            cell, embedding_dim, hidden_size, num_layers, bidirectional, dropout, nonlinearity
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(pooled_size(self.encoder.output_size, pooling), 1)
        for module in self.encoder.recurrent_modules:
            init_recurrent(module, init, forget_bias)
        # Truncated BPTT steps the optimizer once per chunk, so Lightning's automatic loop cannot
        # be used. Clipping is the model's either way: the train task routes trainer.gradient_clip_* here.
        self.automatic_optimization = tbptt_steps is None
        self.clip_val: float | None = None
        self.clip_algorithm = "norm"
        self._optimizer_steps, self._clipped_steps = 0, 0
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.val_metrics = _metrics("val/")
        self.test_metrics = _metrics("test/")
        self.val_acc_best = MaxMetric()
        if pretrained:  # overrides the inits above; classifier_from_checkpoint does not re-read it
            load_language_model(self, pretrained)
        elif gradual_unfreezing:
            log.warning(
                "model.gradual_unfreezing=true without model.pretrained: the frozen layers are random"
            )

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Token ids (B, T), right-padded, and lengths (B,) -> logits (B,)."""
        return self.classify_embedded(self.dropout(self.embedding(input_ids)), lengths)

    def classify_embedded(self, x: Tensor, lengths: Tensor) -> Tensor:
        """From embedded inputs, so diagnostics can ask for the gradient at every input step."""
        outputs = self.encoder(x, lengths)
        pooled = pool(outputs, lengths, self.hparams.pooling, self.hparams.bidirectional)
        return self.head(self.dropout(pooled)).squeeze(-1).float()

    def _shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self(batch["input_ids"], batch["lengths"])
        return self.loss_fn(logits, batch["labels"]), logits

    def _check_finite(self, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"train/loss={loss.item()} at global step {self.global_step} (epoch {self.current_epoch}): "
                "training stopped, last.ckpt keeps the last good state; try trainer.gradient_clip_val=1.0 "
                "or a lower model.optimizer.lr"
            )

    def _log_train(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        acc = ((logits > 0).float() == labels).float().mean()
        size = len(labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/acc", acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        if not self.automatic_optimization:
            return self._tbptt_training_step(batch)
        loss, logits = self._shared_step(batch)
        self._check_finite(loss)
        self._log_train(loss, logits, batch["labels"])
        return loss

    def _chunk_count(self, length: int) -> int:
        """Every DDP rank must run as many backward passes as the others, or it hangs."""
        count = math.ceil(length / self.hparams.tbptt_steps)
        if self._trainer is not None and self.trainer.world_size > 1:
            count = int(
                self.trainer.strategy.reduce(
                    torch.tensor(count, device=self.device), reduce_op="max"
                )
            )
        return count

    def tbptt_losses(self, batch: dict[str, Tensor]) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (loss, logits) per chunk of `tbptt_steps` tokens; backward each before resuming.

        The carried hidden state (and running pooled summary) is detached between chunks, so
        no gradient crosses a chunk boundary. `tbptt_loss=every`: each chunk's loss is the label
        predicted from the state at the chunk's end, over sequences still running in it;
        `last`: only the final chunk has a loss, earlier chunks only carry the state forward.
        """
        ids, lengths, labels = batch["input_ids"], batch["lengths"], batch["labels"]
        k = self.hparams.tbptt_steps
        chunks = self._chunk_count(ids.size(1))
        if chunks * k > ids.size(1):
            ids = F.pad(ids, (0, chunks * k - ids.size(1)), value=self.hparams.pad_id)
        state, pooled = None, RunningPool(self.hparams.pooling)
        for i, chunk in enumerate(ids.split(k, dim=1)):
            chunk_len = (lengths - i * k).clamp(0, k)
            with_grad = self.hparams.tbptt_loss == "every" or i == chunks - 1
            with torch.set_grad_enabled(with_grad):
                outputs, state = self.encoder.forward_chunk(
                    self.dropout(self.embedding(chunk)), chunk_len, state
                )
                summary = pooled.update(outputs, chunk_len)
                logits = self.head(self.dropout(summary)).squeeze(-1).float()
            if with_grad:
                weight = (
                    (chunk_len > 0).float()
                    if self.hparams.tbptt_loss == "every"
                    else torch.ones_like(labels)
                )
                per_row = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
                yield (per_row * weight).sum() / weight.sum().clamp(min=1), logits
            state = detach_state(state)
            pooled.detach()

    def _tbptt_training_step(self, batch: dict[str, Tensor]) -> None:
        optimizer = self.optimizers()
        losses, logits = [], None
        for loss, chunk_logits in self.tbptt_losses(batch):
            self._check_finite(loss)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()  # Lightning calls on_before_optimizer_step (the clipping) first
            losses.append(loss.detach())
            logits = chunk_logits.detach()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        self._log_train(torch.stack(losses).mean(), logits, batch["labels"])

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Bottom to top: the embedding, each recurrent layer, the head (ULMFiT's groups)."""
        layers: dict[int, list[nn.Parameter]] = {}
        for name, param in self.encoder.named_parameters():
            if self.hparams.bidirectional:  # forward_layers.<i>.weight_ih_l0
                depth = int(name.split(".")[1])
            else:  # rnn.weight_ih_l<i>[_reverse]
                depth = int(name.split("_l")[-1].removesuffix("_reverse"))
            layers.setdefault(depth, []).append(param)
        return [
            list(self.embedding.parameters()),
            *(layers[depth] for depth in sorted(layers)),
            list(self.head.parameters()),
        ]

    def lr_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """Discriminative fine-tuning: the head at the configured lr, each group below it at
        1/lr_decay of the one above, so pretrained layers move less than the new head."""
        if self.hparams.lr_decay == 1:
            return super().lr_groups()  # one group, as checkpoints written before lr_decay have
        groups = self.layer_groups()
        return [
            (group, self.hparams.lr_decay ** (i + 1 - len(groups)))
            for i, group in enumerate(groups)
        ]

    def unfreeze_for_epoch(self, epoch: int) -> None:
        """Gradual unfreezing: epoch e trains the top e + 1 layer groups, the rest stay frozen."""
        groups = self.layer_groups()
        frozen = max(0, len(groups) - 1 - epoch)
        for i, group in enumerate(groups):
            for param in group:
                param.requires_grad_(i >= frozen)

    def on_fit_start(self) -> None:
        # by now the strategy has wrapped the model (torch's DistributedDataParallel under DDP)
        find_unused = getattr(self.trainer.strategy.model, "find_unused_parameters", False)
        if self.hparams.gradual_unfreezing and self.trainer.world_size > 1 and not find_unused:
            raise ConfigError(
                "model.gradual_unfreezing=True: frozen layers get no gradient, which DDP waits for; "
                "use trainer.strategy=ddp_find_unused_parameters_true"
            )

    def on_train_epoch_start(self) -> None:
        start_epoch(self.trainer.train_dataloader, self.current_epoch)
        self._optimizer_steps, self._clipped_steps = 0, 0
        if self.hparams.gradual_unfreezing:
            self.unfreeze_for_epoch(self.current_epoch)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Runs after unscaling under 16-mixed, so the norm and the clipping see true gradients.

        The model clips, not Lightning (the train task hands it trainer.gradient_clip_*): one
        norm serves the divergence check, the log and the clipping, and fused optimizers work.
        """
        params = [p for p in self.parameters() if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        norm = nn.utils.get_total_norm(grads, foreach=True)
        value = norm.item()
        if (
            not math.isfinite(value)
            and getattr(self.trainer.precision_plugin, "scaler", None) is None
        ):
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


def check_classifier_checkpoint(checkpoint: dict[str, Any], path: str) -> None:
    """A language model's checkpoint has the same cell and sizes, so it would pass for one."""
    if is_language_model(checkpoint.get("hyper_parameters", {})):
        raise ConfigError(
            f"ckpt_path={path!r}: a language model's checkpoint (experiment=imdb_lm); this needs a "
            "classifier's (fine-tune one from it with train.py model.pretrained=<it>)"
        )


def classifier_from_checkpoint(checkpoint: dict[str, Any], path: str) -> RNNClassifier:
    """Rebuild the model from a checkpoint read with `weights_only=True`."""
    check_classifier_checkpoint(checkpoint, path)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k != "pretrained"}
    model = RNNClassifier(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.eval()
