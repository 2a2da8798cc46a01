"""Checkpoint saves interrupted half-way: the previous last.ckpt survives and a resume uses it.

Lightning's own TorchCheckpointIO (2.6) stages the checkpoint in the system temp folder and
commits it with shutil.move, which copies into last.ckpt in place when that folder is on another
filesystem; these tests make the temp folder "another filesystem" (os.rename fails with EXDEV)
and kill the copy, and kill our writer at its rename, so either writer is interrupted while
committing."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rnnlab.run.train import train
from rnnlab.utils import read_checkpoint
from rnnlab.utils.checkpoint_io import AtomicCheckpointIO
from tests.conftest import TINY, compose_cfg


class Killed(Exception):
    """Stands for the process dying at that point."""


@contextlib.contextmanager
def commit_of_last_ckpt_killed(nth: int) -> Iterator[None]:
    """The `nth` commit of a last.ckpt in the block dies: our os.replace, or the in-place copy
    that shutil.move falls back to across filesystems. Cleanup a kill would skip is disabled."""
    seen = 0
    real_replace, real_rename = os.replace, os.rename
    real_copy = shutil._fastcopy_sendfile

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen == nth:
            raise Killed

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "last.ckpt":
            count()
        return real_replace(src, dst, *args, **kwargs)

    def rename(src, dst, *args, **kwargs):
        if str(dst).endswith(".ckpt"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *args, **kwargs)

    def copy(fsrc, fdst):  # fdst is already open, and truncated
        if Path(fdst.name).name == "last.ckpt":
            count()
        return real_copy(fsrc, fdst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", replace)
        mp.setattr(os, "rename", rename)
        mp.setattr(shutil, "_fastcopy_sendfile", copy)
        mp.setattr(os, "unlink", lambda *args, **kwargs: None)
        with pytest.raises(Killed):
            yield
    assert seen >= nth


def test_save_killed_while_committing_keeps_the_previous_checkpoint(tmp_path) -> None:
    """Catches a CheckpointIO that is not atomic in the checkpoint's folder, such as Lightning's
    TorchCheckpointIO: its commit copies over last.ckpt in place, and the kill leaves it
    truncated (read_checkpoint: "not a readable checkpoint"). The leftover temporary is ignored
    and the next save succeeds."""
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.zeros(4096)}, "epoch": 0}, path)
    with commit_of_last_ckpt_killed(1):
        io.save_checkpoint({"state_dict": {"w": torch.ones(4096)}, "epoch": 1}, path)
    saved = read_checkpoint(path)
    assert saved["epoch"] == 0 and torch.equal(saved["state_dict"]["w"], torch.zeros(4096))
    others = [p.name for p in path.parent.iterdir() if p != path]
    assert all(n.startswith(".last.ckpt.") and n.endswith(".tmp") for n in others)
    io.save_checkpoint({"state_dict": {"w": torch.ones(4096)}, "epoch": 1}, path)
    assert read_checkpoint(path)["epoch"] == 1


def test_save_killed_mid_write_leaves_only_a_hidden_temporary(tmp_path) -> None:
    """A kill while torch.save is still writing. Catches a writer that streams into last.ckpt
    itself (or a temporary not hidden: a `last*.ckpt` glob would pick it up): the previous
    checkpoint would be half overwritten."""

    class DiesWhenPickled:
        def __reduce__(self):
            raise Killed

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.zeros(4096)}, "epoch": 0}, path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "unlink", lambda *args, **kwargs: None)  # a kill cleans nothing up
        with pytest.raises(Killed):
            io.save_checkpoint(
                {"state_dict": {"w": torch.ones(1 << 20)}, "zz": DiesWhenPickled()}, path
            )
    assert read_checkpoint(path)["epoch"] == 0
    (leftover,) = [p for p in tmp_path.iterdir() if p != path]
    assert leftover.name.startswith(".last.ckpt.") and leftover.suffix == ".tmp"
    assert leftover.stat().st_size > 0  # the kill came mid-write
    assert list(tmp_path.glob("last*.ckpt")) == [path]


def test_training_killed_while_saving_last_ckpt_resumes_from_the_previous_one(
    hub_dir, cache_dir, tmp_path
) -> None:
    """The train task end to end: the second epoch's last.ckpt save is killed while committing;
    last.ckpt must still be the first epoch's, and `ckpt_path=last` resumes from it and finishes.
    Catches the train task's Trainer not using AtomicCheckpointIO (Lightning's writer leaves
    last.ckpt truncated, and the resume stops with "not a readable checkpoint")."""
    overrides = [
        *TINY,
        "model=gru",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
        "test=false",
        "callbacks.early_stopping=null",
        "callbacks.gradient_flow=null",
    ]
    cfg = compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir)
    with commit_of_last_ckpt_killed(2):
        train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["epoch"] == 0
    resumed = compose_cfg("train", [*overrides, "ckpt_path=last"], tmp_path, cache_dir, hub_dir)
    train(resumed)
    assert read_checkpoint(last)["epoch"] == 1
    assert (tmp_path / "metrics.json").is_file()
