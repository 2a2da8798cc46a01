"""Fit, then test the best checkpoint on the full test split, then write metrics.json."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from lightning import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from rnnlab.callbacks import TokenThroughput
from rnnlab.models import RecurrentModule, build_model
from rnnlab.models.build import model_class, model_objective, model_settings
from rnnlab.models.components.compiled import compile_stats
from rnnlab.models.pretrained import read_language_model, start_from_language_model
from rnnlab.run.common import test_metrics, write_metrics
from rnnlab.utils import (
    ConfigError,
    check,
    entry_point,
    instantiate_callbacks,
    instantiate_loggers,
    read_checkpoint,
)
from rnnlab.utils.arguments import check_arguments
from rnnlab.utils.checkpoint_io import AtomicCheckpointIO
from rnnlab.utils.config_tree import print_config_tree
from rnnlab.utils.errors import check_choice
from rnnlab.utils.resume import save_resumed_config

log = logging.getLogger(__name__)


def _find(callbacks: list, kind: type) -> Any | None:
    return next((c for c in callbacks if isinstance(c, kind)), None)


def fill_objective(cfg: DictConfig, own: tuple[str, str]) -> tuple[str, str]:
    """Fill cfg.objective's nulls with the model's own (metric, mode) (`model.objective`, or
    `model_objective(cfg.model)` before it is built), so the callbacks' ${objective.*} and a
    search see the metric and mode the run will use."""
    metric, mode = own
    given = cfg.objective
    if given.metric is not None and given.metric != metric:
        check(
            given.mode is not None,
            "objective.mode",
            given.mode,
            f"min or max: objective.metric={given.metric!r} is not the model's own ({metric})",
        )
    given.metric = given.metric or metric
    given.mode = given.mode or mode
    check_choice("objective.mode", given.mode, ("min", "max"))
    return given.metric, given.mode


def _fit_without_validation_warning(
    trainer: L.Trainer, model: RecurrentModule, datamodule: Any, ckpt_path: str | None
) -> None:
    """Fit; a run that ends before its first validation is reported once, by the train task,
    instead of a Lightning warning at every checkpoint."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*ModelCheckpoint\(monitor=.*could not find")
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)


def route_clipping(trainer_cfg: DictConfig, model: RecurrentModule) -> dict[str, Any]:
    """Hand trainer.gradient_clip_* to the model, which clips in on_before_optimizer_step
    (after unscaling under 16-mixed) with the norm it computes anyway; Lightning would compute
    it again, and refuses clipping under truncated BPTT and for fused optimizers under AMP."""
    model.clip_val = trainer_cfg.get("gradient_clip_val")
    model.clip_algorithm = trainer_cfg.get("gradient_clip_algorithm") or "norm"
    return {"gradient_clip_val": None, "gradient_clip_algorithm": None}


def resolve_ckpt_path(
    ckpt_path: str | None, output_dir: Path, model: RecurrentModule
) -> str | None:
    """`last` means this run directory's own last.ckpt (resume with hydra.run.dir=<run>). A
    checkpoint of another kind of model or of other shapes is refused in one line."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        path = output_dir / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise ConfigError(
                f"ckpt_path='last': {path} does not exist; pass hydra.run.dir=<the run to resume> "
                "or ckpt_path=<path to a .ckpt>"
            )
        ckpt_path = str(path)
    checkpoint = read_checkpoint(ckpt_path)
    if not checkpoint.get("model_config") or model_class(checkpoint) is not type(model):
        raise ConfigError(
            f"ckpt_path={ckpt_path!r}: not a {type(model).__name__} checkpoint of this version "
            "(a classifier starts from a language model with model.pretrained=<it>)"
        )
    own = model.state_dict()
    saved = checkpoint["state_dict"]
    differ = sorted(
        k
        for k in own.keys() | saved.keys()
        if k not in own or k not in saved or own[k].shape != saved[k].shape
    )
    if differ:
        raise ConfigError(
            f"ckpt_path={ckpt_path!r}: belongs to a different architecture ({differ[0]} differs): "
            "drop the overrides that change the model, or compare the .hydra/config.yaml of "
            "the run that wrote it"
        )
    return ckpt_path


def check_components(cfg: DictConfig) -> None:
    """Each component's keys and plain values against its `_target_`'s signature, before
    anything is built: a misspelt key or a value of the wrong type is refused in one line."""
    check_arguments(model_settings(cfg.model)[0], "model")
    for key in ("data", "trainer", "callbacks", "logger"):
        if cfg.get(key) is not None:
            check_arguments(OmegaConf.to_container(cfg[key], resolve=True), key)


def build_data_and_model(cfg: DictConfig) -> tuple[Any, RecurrentModule]:
    """The data first: its facts (vocabulary, classes, tokenizer) size the model. A classifier
    started from a language model reads the texts with the LM's tokenizer."""
    model_cfg, pretrained = model_settings(cfg.model)
    lm = read_language_model(pretrained) if pretrained else None
    data_kwargs = {"tokenizer_json": lm["meta"]["tokenizer_json"]} if lm else {}
    datamodule = hydra.utils.instantiate(cfg.data, **data_kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build_model(model_cfg, datamodule.meta)
    if lm:
        start_from_language_model(model, pretrained, lm)
    elif model_cfg.get("gradual_unfreezing"):
        log.warning(
            "model.gradual_unfreezing=true without model.pretrained: the frozen layers are random"
        )
    return datamodule, model


@entry_point
def train(cfg: DictConfig, extra_callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """`extra_callbacks` join the configured ones (a search's pruning callback). cfg.objective
    is filled in place; metrics hold `<objective metric>_best` once it was measured."""
    output_dir = Path(cfg.paths.output_dir)
    metric, _ = fill_objective(cfg, model_objective(cfg.model))
    check_components(cfg)
    L.seed_everything(cfg.seed, workers=True)

    datamodule, model = build_data_and_model(cfg)
    # a resumed run writes nothing into its directory before its checkpoint is accepted
    ckpt_path = (
        resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, model) if cfg.get("train") else None
    )
    if ckpt_path:
        save_resumed_config(cfg, output_dir)
    if cfg.get("extras", {}).get("print_config"):
        print_config_tree(cfg, output_dir)
    callbacks = [*instantiate_callbacks(cfg.get("callbacks")), *extra_callbacks]
    loggers = instantiate_loggers(
        cfg.get("logger"), output_dir, resuming=bool(cfg.get("ckpt_path"))
    )
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        use_distributed_sampler=False,
        **route_clipping(cfg.trainer, model),
        # atomic checkpoints (rnnlab.utils.checkpoint_io); +trainer.plugins=... replaces them
        **({} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}),
    )
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, Any] = {"output_dir": str(output_dir)}
    if cfg.get("train"):
        start = time.perf_counter()
        _fit_without_validation_warning(trainer, model, datamodule, ckpt_path)
        metrics["train_time_s"] = round(time.perf_counter() - start, 1)
        if (throughput := _find(callbacks, TokenThroughput)) and throughput.median:
            metrics["train_tokens_per_s"] = round(throughput.median)
        if throughput and throughput.startup_s is not None:
            metrics["startup_s"] = round(throughput.startup_s, 2)
        if throughput and throughput.median_utilisation is not None:
            metrics["gpu_utilization_pct"] = throughput.median_utilisation
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            metrics["gpu_peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)

    checkpoint = _find(callbacks, ModelCheckpoint)
    if checkpoint and checkpoint.best_model_path:
        metrics["best_ckpt_path"] = checkpoint.best_model_path
        metrics[f"{checkpoint.monitor}_best"] = float(checkpoint.best_model_score)
    never_measured = cfg.get("train") and metric not in trainer.callback_metrics
    if never_measured:
        log.warning(
            "Training ended before any %s was measured (no validation ran): early stopping and "
            "the best checkpoint had no %s to go by; the last checkpoint is kept%s",
            metric,
            metric,
            " and the current weights are tested" if cfg.get("test") else "",
        )
    if cfg.get("test"):
        best = metrics.get("best_ckpt_path")
        if best is None and not never_measured:
            log.warning("No best checkpoint: testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(test_metrics(trainer))

    if cfg.model.get("compile_chunk"):  # training's graphs and testing's
        compiled = compile_stats()
        metrics.update(compiled)
        log.info("Compiled %(compile_graphs)d graphs in %(compile_s).1f s", compiled)
    metrics["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if model.meta.chance is not None:  # a memory task: what a lab report draws its lines from
        metrics.update(
            span=model.meta.span, chance=model.meta.chance, solved_at=model.task.solved_at
        )
    write_metrics(trainer, output_dir / "metrics.json", metrics)
    log.info("Run directory: %s", output_dir)
    return metrics
