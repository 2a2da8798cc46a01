"""Test metrics from a checkpoint alone: the model (a classifier, any task, or a language model),
the tokenizer and the data module it was trained with are rebuilt from it, and the model's own
test step scores it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from rnnlab.models import model_from_checkpoint
from rnnlab.run.common import test_metrics, write_metrics
from rnnlab.utils import ConfigError, entry_point, read_checkpoint


def data_overrides(cfg: DictConfig, stored: dict[str, Any]) -> dict[str, Any]:
    """The `data.*` keys set for this evaluation, checked against the data module the
    checkpoint was trained with: a synthetic task has no files and no cache, so a key it lacks
    is refused, except a cache folder it has no use for."""
    asked = {
        k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if v is not None
    }
    if "cache_dir" not in stored:
        asked.pop("cache_dir", None)
    for key, value in asked.items():
        if key not in stored:
            allowed = ", ".join(sorted(k for k in stored if not k.startswith("_")))
            raise ConfigError(
                f"data.{key}={value!r}: the checkpoint's data module {stored['_target_']} has "
                f"no such key; it takes: {allowed}"
            )
    return asked


@entry_point
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path=None: required; pass ckpt_path=<run>/checkpoints/best.ckpt")
    checkpoint = read_checkpoint(cfg.ckpt_path)
    model = model_from_checkpoint(checkpoint, str(cfg.ckpt_path))
    data_config = {**model.meta.data_config, **data_overrides(cfg, model.meta.data_config)}
    datamodule = hydra.utils.instantiate(data_config, tokenizer_json=model.meta.tokenizer_json)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=False, use_distributed_sampler=False
    )
    trainer.test(model, datamodule=datamodule)
    metrics = {"ckpt_path": str(cfg.ckpt_path), **test_metrics(trainer)}
    write_metrics(trainer, Path(cfg.paths.output_dir) / "metrics.json", metrics)
    return metrics
