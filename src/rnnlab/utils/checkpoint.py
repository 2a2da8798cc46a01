"""Read checkpoints without executing code from them."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from rnnlab.utils.errors import ConfigError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={str(path)!r}: no such file; pass a .ckpt written by train.py"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a corrupt or foreign file
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):
            raise ConfigError(
                f"ckpt_path={str(path)!r}: refused, it holds objects other than plain data "
                "(loading it would run code from the file)"
            ) from err
        raise ConfigError(
            f"ckpt_path={str(path)!r}: not a readable checkpoint (truncated or corrupt?)"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"ckpt_path={str(path)!r}: not a Lightning checkpoint (no state_dict)")
    return checkpoint
