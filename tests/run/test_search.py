"""The Optuna search (rnnlab.run.search): a study kept in sqlite, pruning, the objective's direction."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from omegaconf import DictConfig, OmegaConf

from rnnlab.run.search import open_study, run_search
from rnnlab.run.train import fill_objective, train
from rnnlab.utils.errors import ConfigError
from tests.conftest import TINY, compose_cfg

# one epoch per trial; the lr alone is searched, so the trials differ in how well they learn
FAST = [*TINY, "model=gru", "trainer.max_epochs=1", "extras.print_config=false"]
LR_ONLY = {
    "model.optimizer.lr": {
        "_target_": "optuna.distributions.FloatDistribution",
        "low": 1e-3,
        "high": 3e-2,
        "log": True,
    }
}


def _search_cfg(out: Path, storage: Path, hub_dir, cache_dir, *overrides: str) -> DictConfig:
    cfg = compose_cfg(
        "train",
        [*FAST, "hparams_search=imdb_optuna", f"search.storage=sqlite:///{storage}", *overrides],
        out,
        cache_dir,
        hub_dir,
    )
    cfg.search.params = LR_ONLY
    return cfg


def _study(storage: Path) -> optuna.Study:
    return optuna.load_study(study_name="imdb_optuna", storage=f"sqlite:///{storage}")


@pytest.mark.slow
def test_rerunning_the_same_search_continues_its_sqlite_study(hub_dir, cache_dir, tmp_path) -> None:
    storage = tmp_path / "optuna" / "study.db"
    for run in ("first", "second"):
        cfg = _search_cfg(tmp_path / run, storage, hub_dir, cache_dir, "search.n_trials=4")
        best = run_search(cfg, train)
        assert 0.5 < best <= 1.0
    trials = _study(storage).trials
    assert [t.number for t in trials] == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(p.name for p in (tmp_path / "second" / "trials").iterdir()) == list("4567")
    assert (tmp_path / "second" / "trials" / "4" / ".hydra" / "config.yaml").is_file()
    assert (tmp_path / "second" / "search.json").is_file()


@pytest.mark.slow
def test_a_clearly_worse_trial_is_pruned(hub_dir, cache_dir, tmp_path) -> None:
    """A good lr, then one at which nothing is learnt: the median pruner stops the second after
    its first validation past warm-up (validations are the pruner's steps)."""
    storage = tmp_path / "study.db"
    pruner = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1}
    study = optuna.create_study(
        study_name="imdb_optuna", storage=f"sqlite:///{storage}", direction="maximize"
    )
    for lr in (0.03, 1e-9):
        study.enqueue_trial({"model.optimizer.lr": lr})
    overrides = ["search.n_trials=2", "trainer.max_epochs=4", "callbacks.early_stopping=null"]
    cfg = _search_cfg(tmp_path / "run", storage, hub_dir, cache_dir, *overrides)
    cfg.search.params = {
        "model.optimizer.lr": {**LR_ONLY["model.optimizer.lr"], "low": 1e-9, "high": 0.1}
    }
    cfg.search.pruner = pruner | {"n_warmup_steps": 1}
    run_search(cfg, train)
    good, bad = _study(storage).trials
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert max(bad.intermediate_values) < 3  # stopped before its last epoch


def test_the_study_direction_follows_the_objective(tmp_path) -> None:
    search = OmegaConf.create(
        {"study_name": "s", "storage": f"sqlite:///{tmp_path}/s.db", "sampler": None}
    )
    assert open_study(search, "minimize").direction == optuna.study.StudyDirection.MINIMIZE
    with pytest.raises(
        ConfigError, match="search.study_name='s': the study in .* was made to minimize"
    ):
        open_study(search, "maximize")


@pytest.mark.parametrize(
    ("given", "model", "expected"),
    [
        ({"metric": None, "mode": None}, ("val/acc", "max"), ("val/acc", "max")),
        ({"metric": None, "mode": None}, ("val/ppl", "min"), ("val/ppl", "min")),
        ({"metric": "val/loss", "mode": "min"}, ("val/acc", "max"), ("val/loss", "min")),
        ({"metric": "val/acc", "mode": None}, ("val/acc", "max"), ("val/acc", "max")),
    ],
)
def test_a_null_objective_is_the_models_own(given, model, expected) -> None:
    cfg = OmegaConf.create({"objective": given})
    assert fill_objective(cfg, model) == expected
    assert (cfg.objective.metric, cfg.objective.mode) == expected
