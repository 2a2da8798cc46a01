"""Build callbacks and loggers from their config groups (one `_target_` per entry)."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

import hydra
from lightning import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from rnnlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb_id.txt"


def _entries(cfg: DictConfig | None) -> list[DictConfig]:
    return [c for c in (cfg or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def instantiate_callbacks(cfg: DictConfig | None) -> list[Callback]:
    return [hydra.utils.instantiate(c) for c in _entries(cfg)]


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_run_id(run_dir: Path, resuming: bool) -> dict[str, Any]:
    """The wandb run of this run directory: a resumed run (ckpt_path set) continues the one its
    directory started, kept in `wandb_id.txt`; any other run starts one and keeps its id."""
    path = run_dir / WANDB_ID_FILE
    if resuming and path.is_file():
        return {"id": path.read_text().strip(), "resume": "allow"}
    from wandb.sdk.lib.runid import generate_id

    run_id = generate_id()
    if rank_zero_only.rank == 0:  # the other DDP ranks log nothing to wandb
        atomic_write_text(path, run_id + "\n")
    return {"id": run_id}


def instantiate_loggers(
    cfg: DictConfig | None, run_dir: Path | None = None, resuming: bool = False
) -> list[Logger]:
    """`run_dir` (the run directory) keeps the wandb run id, so that resuming continues it."""
    loggers = []
    for c in _entries(cfg):
        extra = {}
        is_wandb = c._target_.endswith("WandbLogger")
        if is_wandb and "WANDB_MODE" not in os.environ and not wandb_has_credentials():
            log.warning("wandb: no credentials found, logging offline (WANDB_MODE=offline)")
            extra["offline"] = True
        if is_wandb and run_dir is not None and c.get("id") is None:
            extra |= wandb_run_id(run_dir, resuming)
        loggers.append(hydra.utils.instantiate(c, **extra))
    return loggers
