"""Every option of every config group composes (conf/ is the registry), and those that can run
on this machine run: each debug preset and each CPU trainer preset, on tiny data."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rnnlab.models.build import model_objective
from rnnlab.run.train import check_components, fill_objective, train
from tests.conftest import CONF, TINY, compose_cfg

# groups chosen inside another config, and the package they are chosen at
PACKAGED = {"model/common": "model/common@model"}
# options that need a preset around them: the LM's output layer (a group only
# conf/model/common/lm.yaml holds) and the LM's data (streams cut into chunks of the LM's
# model.tbptt_steps)
CONTEXT = {"model/decoder": ["experiment=imdb_lm"], "data=imdb_lm": ["experiment=imdb_lm"]}


def all_options() -> list[tuple[str, str]]:
    """(group, option) for every YAML file under conf/, the entry points' own configs aside."""
    return sorted(
        (str(path.parent.relative_to(CONF)), path.stem)
        for path in CONF.rglob("*.yaml")
        if path.parent != CONF
    )


def _override(group: str, option: str) -> str:
    return f"{PACKAGED.get(group, group)}={option}"


def test_the_registry_finds_every_group() -> None:
    groups = {group for group, _ in all_options()}
    assert {
        "logger",
        "debug",
        "trainer",
        "hparams_search",
        "experiment",
        "hydra/launcher",
    } <= groups


@pytest.mark.parametrize(
    ("group", "option"), [pytest.param(g, o, id=f"{g}={o}") for g, o in all_options()]
)
def test_every_option_composes_resolves_and_fits_its_components_signatures(
    group, option, tmp_path
) -> None:
    """Catches an option that does not compose or resolve, and one whose keys or values its
    components' signatures refuse (a train run would stop on it in one line)."""
    context = CONTEXT.get(group, CONTEXT.get(f"{group}={option}", []))
    overrides = [*context, _override(group, option)]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = compose("train", overrides=overrides, return_hydra_config=True)
    assert full.hydra.runtime.choices.get(group, option) == option
    cfg = compose_cfg("train", overrides, tmp_path, tmp_path / "cache", tmp_path)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    fill_objective(cfg, model_objective(cfg.model))
    check_components(cfg)
    if "search" in cfg:  # the searched keys exist; sampler, pruner and distributions build
        assert all(OmegaConf.select(cfg, key) is not None for key in cfg.search.params)
        for node in (cfg.search.sampler, cfg.search.pruner, *cfg.search.params.values()):
            hydra.utils.instantiate(node, _convert_="all")


RUNNABLE = [
    *(f"debug={option}" for group, option in all_options() if group == "debug"),
    *(f"trainer={option}" for group, option in all_options() if group == "trainer"),
]
# gpu presets need CUDA; ddp starts two processes (tests/run/test_ddp.py runs it)
NOT_HERE = {"trainer=gpu", "trainer=ddp"}


@pytest.mark.slow
@pytest.mark.parametrize("override", [o for o in RUNNABLE if o not in NOT_HERE])
def test_every_cpu_preset_runs(override, hub_dir, cache_dir, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*TINY, "model=gru", override], tmp_path, cache_dir, hub_dir)
    assert "test/acc" in train(cfg)
