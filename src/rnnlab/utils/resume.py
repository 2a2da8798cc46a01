"""Resuming a run in its own directory (`ckpt_path=last hydra.run.dir=<run>`): the run's saved
overrides are composed again, so only what changes has to be given, and the run's saved config
is replaced only once its checkpoint has been accepted."""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from rnnlab.utils.io import atomic_write_text

SAVED_OVERRIDES = Path(".hydra") / "overrides.yaml"
# Hydra writes no .hydra/ files for the resumed start; save_resumed_config writes them later
DEFER_SAVING = "hydra.output_subdir=null"


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def resume_arguments(argv: list[str]) -> list[str]:
    """`argv` after the run's saved overrides when it resumes a run directory in place; those
    given now win, key by key, and `~key` also drops the saved keys below it. Any other command
    line is returned unchanged."""
    given = {_key(a): a.partition("=")[2] for a in argv if "=" in a and not a.startswith("-")}
    run_dir = given.get("hydra.run.dir")
    multirun = "-m" in argv or "--multirun" in argv
    if given.get("ckpt_path") != "last" or run_dir is None or multirun:
        return argv
    saved_file = Path(run_dir) / SAVED_OVERRIDES
    if not saved_file.is_file():
        return argv
    deleted = tuple(_key(a) + "." for a in argv if a.startswith("~"))
    saved = yaml.safe_load(saved_file.read_text()) or []
    kept = [o for o in saved if _key(o) not in given and not _key(o).startswith(deleted)]
    return [*kept, *argv, DEFER_SAVING]


@rank_zero_only  # the other DDP ranks run with output_subdir=null too (Lightning sets it)
def save_resumed_config(cfg: DictConfig, run_dir: Path) -> None:
    """Write the run's .hydra/config.yaml and overrides.yaml for a start in place whose saving
    was deferred (a later resume composes these overrides again)."""
    deferred = HydraConfig.initialized() and HydraConfig.get().output_subdir is None
    if cfg.get("ckpt_path") != "last" or not deferred:
        return
    folder = run_dir / ".hydra"
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    overrides = list(HydraConfig.get().overrides.task)
    atomic_write_text(folder / SAVED_OVERRIDES.name, yaml.safe_dump(overrides))
