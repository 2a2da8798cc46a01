"""Hyperparameter search with Optuna, run by train.py when the config has a `search` node
(conf/hparams_search/): `python train.py hparams_search=imdb_optuna`.

Each trial is a train task in this process, in `<run dir>/trials/<trial number>` (with its
.hydra/config.yaml, so rnnlab.tools.report reads it as any run). The trial object stays at hand during
training, so Optuna's Lightning callback reports the objective after every validation and
stops a trial the pruner judges unpromising. The study lives in `search.storage` (sqlite by
default): running the same command again adds `search.n_trials` more trials to it. The study's
direction is the run's objective (cfg.objective, else the model's own): an LM search minimises
val/ppl.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from rnnlab.models.build import model_objective
from rnnlab.run.train import fill_objective
from rnnlab.utils.config_tree import print_config_tree
from rnnlab.utils.entry_point import entry_point
from rnnlab.utils.errors import ConfigError, check
from rnnlab.utils.io import atomic_write_text

log = logging.getLogger(__name__)

DIRECTIONS = {"max": "maximize", "min": "minimize"}


def _sqlite_folder(storage: str) -> Path | None:
    """The folder an sqlite URL's file lives in (created before Optuna opens it)."""
    prefix = "sqlite:///"
    return Path(storage.removeprefix(prefix)).parent if storage.startswith(prefix) else None


def open_study(search: DictConfig, direction: str) -> Any:
    """Create the study, or load it when `search.storage` already holds one of its name."""
    import optuna

    storage = search.storage
    if storage and (folder := _sqlite_folder(storage)):
        folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=storage,
        study_name=search.study_name,
        direction=direction,
        sampler=hydra.utils.instantiate(search.sampler) if search.get("sampler") else None,
        pruner=hydra.utils.instantiate(search.pruner) if search.get("pruner") else None,
        load_if_exists=True,
    )
    stored = study.direction.name.lower()
    check(
        stored == direction,
        "search.study_name",
        search.study_name,
        f"the study in {storage} was made to {stored}; this objective needs {direction} "
        "(give a new study_name)",
    )
    return study


def trial_config(cfg: DictConfig, params: dict[str, Any], run_dir: Path) -> DictConfig:
    """The run's config with a trial's parameters set, writing into `run_dir`."""
    trial_cfg = copy.deepcopy(cfg)
    with open_dict(trial_cfg):
        del trial_cfg.search
        trial_cfg.paths.output_dir = str(run_dir)
        trial_cfg.extras.print_config = False  # the search printed it once
    for key, value in params.items():
        check(
            OmegaConf.select(cfg, key, default=None) is not None,
            f"search.params.{key}",
            value,
            "a key the config has (a value override; config groups cannot be searched)",
        )
        OmegaConf.update(trial_cfg, key, value, merge=False)
    return trial_cfg


@entry_point
def run_search(cfg: DictConfig, train: Callable[..., dict[str, Any]]) -> float | None:
    """Run `search.n_trials` trials of `train`; return the study's best objective value."""
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    search = cfg.search
    out = Path(cfg.paths.output_dir)
    if cfg.extras.get("print_config"):
        print_config_tree(cfg, out)
    require_single_process(cfg)
    metric, mode = fill_objective(cfg, model_objective(cfg.model))
    study = open_study(search, DIRECTIONS[mode])
    distributions = {
        key: hydra.utils.instantiate(spec, _convert_="all") for key, spec in search.params.items()
    }
    for _ in range(search.n_trials):
        trial = study.ask(distributions)
        log.info("Trial %d of study %s: %s", trial.number, study.study_name, trial.params)
        try:
            trial_dir = out / "trials" / str(trial.number)
            trial_cfg = trial_config(cfg, trial.params, trial_dir)
            atomic_write_text(trial_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(trial_cfg))
            metrics = train(trial_cfg, [PyTorchLightningPruningCallback(trial, monitor=metric)])
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            log.info("Trial %d pruned", trial.number)
            continue
        except BaseException:  # a failed or interrupted trial must not stay RUNNING in the study
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        value = metrics.get(f"{metric}_best")
        if value is None:
            log.warning("Trial %d measured no %s: marked failed", trial.number, metric)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    return _summarise(study, metric, out)


def _summarise(study: Any, metric: str, out: Path) -> float | None:
    """Log the best trial and keep it in `<run dir>/search.json`."""
    try:
        best = study.best_trial
    except ValueError:  # no trial has completed
        log.warning("Study %s has no completed trial yet", study.study_name)
        return None
    summary = {
        "study_name": study.study_name,
        "trials": len(study.trials),
        "best_trial": best.number,
        "metric": metric,
        "best_value": best.value,
        "params": best.params,
    }
    atomic_write_text(out / "search.json", json.dumps(summary, indent=2) + "\n")
    log.info(
        "Best of %d trials: #%d, %s=%.4f, %s",
        len(study.trials),
        best.number,
        metric,
        best.value,
        best.params,
    )
    return best.value


def require_single_process(cfg: DictConfig) -> None:
    """Lightning's DDP starts this script again per rank, which would run the search again."""
    if str(cfg.trainer.get("strategy", "auto")).startswith("ddp"):
        raise ConfigError(
            f"trainer.strategy={cfg.trainer.strategy!r}: a search runs its trials one process "
            "each; use trainer.devices=1 (trainer=default, cpu or gpu)"
        )
