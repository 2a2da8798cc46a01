"""Build callbacks and loggers from their config groups (one `_target_` per entry)."""

from __future__ import annotations

import logging
import netrc
import os

import hydra
from lightning import Callback
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


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


def instantiate_loggers(cfg: DictConfig | None) -> list[Logger]:
    loggers = []
    for c in _entries(cfg):
        extra = {}
        wandb = c._target_.endswith("WandbLogger") and "WANDB_MODE" not in os.environ
        if wandb and not wandb_has_credentials():
            log.warning("wandb: no credentials found, logging offline (WANDB_MODE=offline)")
            extra["offline"] = True
        loggers.append(hydra.utils.instantiate(c, **extra))
    return loggers
