"""Many-to-one sentiment classifier wrapping nn.RNN / nn.LSTM / nn.GRU."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from rnnlab.models.encoder import CELLS, POOLINGS, RecurrentEncoder, pool
from rnnlab.utils.errors import check

NONLINEARITIES = ("tanh", "relu")


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}, prefix=prefix
    )


class RNNClassifier(LightningModule):
    """Embedding -> recurrent encoder -> masked pooling -> one logit (BCEWithLogitsLoss).

    `vocab_size` and `pad_id` come from the data module; the tokenizer JSON rides in every
    checkpoint so that prediction needs the checkpoint alone.
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
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        tokenizer_json: str | None = None,
    ) -> None:
        super().__init__()
        check(cell in CELLS, "model.cell", cell, f"one of {list(CELLS)}")
        for key, value in (
            ("embedding_dim", embedding_dim),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            check(isinstance(value, int) and value >= 1, f"model.{key}", value, "an integer >= 1")
        check(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
        check(
            nonlinearity in NONLINEARITIES,
            "model.nonlinearity",
            nonlinearity,
            f"one of {list(NONLINEARITIES)}",
        )
        check(pooling in POOLINGS, "model.pooling", pooling, f"one of {list(POOLINGS)}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "tokenizer_json"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.tokenizer_json = tokenizer_json

        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = RecurrentEncoder(
            cell, embedding_dim, hidden_size, num_layers, bidirectional, dropout, nonlinearity
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size, 1)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.val_metrics = _metrics("val/")
        self.test_metrics = _metrics("test/")
        self.val_acc_best = MaxMetric()

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Token ids (B, T), right-padded, and lengths (B,) -> logits (B,)."""
        x = self.dropout(self.embedding(input_ids))
        outputs = self.encoder(x, lengths)
        pooled = pool(outputs, lengths, self.hparams.pooling, self.hparams.bidirectional)
        return self.head(self.dropout(pooled)).squeeze(-1).float()

    def _shared_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        logits = self(batch["input_ids"], batch["lengths"])
        return self.loss_fn(logits, batch["labels"]), logits

    def on_train_epoch_start(self) -> None:
        # Lightning only reshuffles samplers it knows about; ours is a custom batch sampler.
        batch_sampler = getattr(self.trainer.train_dataloader, "batch_sampler", None)
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, logits = self._shared_step(batch)
        acc = ((logits > 0).float() == batch["labels"]).float().mean()
        size = len(batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/acc", acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        return loss

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

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return torch.sigmoid(self(batch["input_ids"], batch["lengths"]))

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or torch.optim.Adam
        optimizer = factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = self.trainer.estimated_stepping_batches
        scheduler = self.scheduler_factory(optimizer=optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tokenizer_json"] = self.tokenizer_json

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.tokenizer_json = checkpoint.get("tokenizer_json")


def classifier_from_checkpoint(checkpoint: dict[str, Any]) -> RNNClassifier:
    """Rebuild the model from a checkpoint read with `weights_only=True`."""
    model = RNNClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.eval()
