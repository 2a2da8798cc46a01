"""The data module under a real Trainer: epochs reshuffle with no model hook, and a run stopped
and resumed from its last checkpoint sees the batches an uninterrupted one does."""

import contextlib
from pathlib import Path

import pytest
import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from rnnlab.callbacks import ExactResume
from rnnlab.data import TextClassificationDataModule
from tests.conftest import quiet_trainer


class Recorder(LightningModule):
    """Learns nothing; records each training batch's first tokens, per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[list[int]]] = {}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.seen.setdefault(self.current_epoch, []).append(batch["input_ids"][:, 0].tolist())
        return (self.weight * batch["labels"].float()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class EarlyRecorder(Recorder):
    """Builds (and so iterates) the train loader in configure_optimizers, as OneCycle's
    `estimated_stepping_batches` does, before a resumed run's loader state is loaded."""

    def configure_optimizers(self) -> torch.optim.Optimizer:
        assert self.trainer.estimated_stepping_batches > 0
        return super().configure_optimizers()


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise Crash


def _fit(
    hub_dir: Path, tmp: Path, run: str, limit: int | None, crash_at: int = 0, ckpt=None, early=False
):
    dm = TextClassificationDataModule(str(hub_dir), cache_dir=str(tmp / "cache"), vocab_size=100)
    model = EarlyRecorder() if early else Recorder()
    callbacks = [
        ModelCheckpoint(dirpath=tmp / run, save_last=True, every_n_train_steps=2),
        ExactResume(),
    ]
    trainer = quiet_trainer(
        max_epochs=3,
        limit_val_batches=0,
        limit_train_batches=limit,
        enable_checkpointing=True,
        callbacks=callbacks + ([CrashAt(crash_at)] if crash_at else []),
    )
    with contextlib.suppress(Crash):
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return model.seen


# 216 training rows in batches of 64: 4 batches an epoch (3 with limit_train_batches=3); the
# last checkpoint is at the last even step before the crash.
# `early`: the loader is built in configure_optimizers (OneCycle's total_steps), so Lightning
# drops its saved state and ExactResume restores it after the loader's iter() was called.
@pytest.mark.parametrize(
    ("limit", "crash_at", "resumed_at", "early"),
    [
        (None, 7, (1, 2), False),
        (None, 5, (1, 0), False),
        (3, 7, (2, 0), False),
        (None, 7, (1, 2), True),
        (None, 5, (1, 0), True),
    ],
    ids=[
        "mid-epoch",
        "epoch-end",
        "epoch-end-of-a-limited-epoch",
        "mid-epoch-loader-built-early",
        "epoch-end-loader-built-early",
    ],
)
def test_epochs_reshuffle_and_a_resumed_run_sees_the_same_batches(
    hub_dir, tmp_path, limit, crash_at, resumed_at, early
) -> None:
    whole = _fit(hub_dir, tmp_path, "whole", limit, early=early)
    assert whole[0] != whole[1] != whole[2]
    _fit(hub_dir, tmp_path, "crashed", limit, crash_at, early=early)
    resumed = _fit(
        hub_dir,
        tmp_path,
        "resumed",
        limit,
        ckpt=str(tmp_path / "crashed" / "last.ckpt"),
        early=early,
    )
    epoch, batch = resumed_at
    expected = {e: whole[e][batch if e == epoch else 0 :] for e in range(epoch, 3)}
    assert resumed == expected
