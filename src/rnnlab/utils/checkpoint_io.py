"""Checkpoints written atomically on a local disk.

Lightning's TorchCheckpointIO (2.6) writes through an fsspec transaction whose temporary file
lives in the system temp folder, committed with `shutil.move`: when that folder is on another
filesystem than the run (a node-local /tmp, the run on NFS or a mounted volume) the move falls back
to copying into the target in place, so a kill mid-copy leaves a truncated `last.ckpt` where the
previous one was; nothing is fsynced either."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from rnnlab.utils.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file in the checkpoint's own folder, fsync, `os.replace`;
    remote paths (s3://, ...) go to Lightning's own writer."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_open(path) as f:
            torch.save(checkpoint, f)
