"""Test metrics from a checkpoint alone: model, tokenizer and data settings come from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from rnnlab.data import IMDBDataModule
from rnnlab.models import classifier_from_checkpoint
from rnnlab.tasks.common import test_metrics, write_metrics
from rnnlab.utils import read_checkpoint, task_wrapper


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    checkpoint = read_checkpoint(cfg.ckpt_path)
    model = classifier_from_checkpoint(checkpoint, str(cfg.ckpt_path))
    data_hparams = dict(checkpoint.get("datamodule_hyper_parameters", {}))
    data_hparams.update(path=cfg.data.path, cache_dir=cfg.data.cache_dir)
    datamodule = IMDBDataModule(**data_hparams, tokenizer_json=model.tokenizer_json)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=False, use_distributed_sampler=False
    )
    trainer.test(model, datamodule=datamodule)
    metrics = {"ckpt_path": str(cfg.ckpt_path), **test_metrics(trainer)}
    write_metrics(trainer, Path(cfg.paths.output_dir) / "metrics.json", metrics)
    return metrics
