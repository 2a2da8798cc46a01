"""Every preset in conf/experiment/ (found on disk) trains for a couple of steps on tiny synthetic
data and writes metrics.json. An experiment that names model.pretrained starts from the
experiment=imdb_lm run of this module; one that sets a DDP strategy runs as is, as train.py
starts it, in a subprocess on CPU ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from rnnlab.run.evaluate import evaluate
from rnnlab.run.predict import predict
from rnnlab.run.train import train
from tests.conftest import CONF, ROOT, TINY, compose_cfg
from tests.lm_helpers import LM_TINY, write_lm_layout

EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
LM_EXPERIMENT = "imdb_lm"  # what experiment=imdb_finetune's model.pretrained names
# two train batches, one validation (so a best checkpoint is picked), two test batches
STEPS = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
]


def _composed(experiment: str) -> DictConfig:
    return compose_cfg("train", [f"experiment={experiment}"], Path("unused"), Path("unused"))


def _is_lm(experiment: str) -> bool:
    return _composed(experiment).data._target_.endswith("LanguageModelDataModule")


def _overrides(experiment: str, *extra: str) -> list[str]:
    """The tiny sizes, less the data keys this experiment's data module does not have (a
    synthetic task has no vocabulary)."""
    lm_tiny = [o for o in LM_TINY if not o.startswith("experiment=")]
    tiny = lm_tiny if _is_lm(experiment) else TINY
    data_keys = _composed(experiment).data.keys()
    tiny = [o for o in tiny if not o.startswith("data.") or o[5:].split("=")[0] in data_keys]
    return [f"experiment={experiment}", *tiny, *STEPS, *extra]


def _distributed(experiment: str) -> bool:
    cfg = _composed(experiment)
    return "ddp" in str(cfg.trainer.strategy) or cfg.trainer.devices not in (1, "1")


def _names_pretrained(experiment: str) -> bool:
    preset = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml")
    return "pretrained" in preset.get("model", {})


def _train_in_process(experiment: str, out: Path, data: Path, cache: Path, *extra: str) -> dict:
    cfg = compose_cfg("train", _overrides(experiment, *extra), out, cache, data)
    train(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{cfg.objective.metric}_best" in metrics  # at least one validation ran
    return metrics


def _train_as_subprocess(experiment: str, out: Path, data: Path, cache: Path, *extra: str) -> dict:
    """As `python train.py experiment=<it>` starts it (the DDP ranks too), on CPU."""
    args = [
        *[a for a in _overrides(experiment, *extra) if not a.startswith("callbacks.")],
        "trainer.accelerator=cpu",
        f"data.path={data}",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={out}",
    ]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny IMDB with an unsupervised split: the LM reads it, the classifiers train/test."""
    return write_lm_layout(tmp_path_factory.mktemp("lm_imdb"))


@pytest.fixture(scope="module")
def lm_run(lm_data, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(LM_EXPERIMENT)
    _train_in_process(LM_EXPERIMENT, out, lm_data, cache_dir)
    return out


def test_experiments_are_found() -> None:
    assert {"imdb_lm", "imdb_finetune", "simplernn_baseline"} <= set(EXPERIMENTS)
    assert _names_pretrained("imdb_finetune")  # so it runs from this module's LM checkpoint
    assert _is_lm(LM_EXPERIMENT)


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param(e, marks=[pytest.mark.slow, pytest.mark.multiprocess])
        if _distributed(e)
        else e
        for e in EXPERIMENTS
    ],
)
def test_experiment_trains_and_writes_metrics(
    experiment, lm_data, cache_dir, tmp_path, request
) -> None:
    cfg = compose_cfg("train", _overrides(experiment), tmp_path, tmp_path)
    if experiment == LM_EXPERIMENT:
        out = request.getfixturevalue("lm_run")
        metrics = json.loads((out / "metrics.json").read_text())
    else:
        extra = []
        if _names_pretrained(experiment):
            lm = request.getfixturevalue("lm_run")
            extra.append(f"model.pretrained={lm / 'checkpoints' / 'best.ckpt'}")
        run = _train_as_subprocess if _distributed(experiment) else _train_in_process
        out = tmp_path / "run"
        out.mkdir()
        metrics = run(experiment, out, lm_data, cache_dir, *extra)
    assert metrics["train_time_s"] >= 0 and metrics["trainable_params"] > 0
    assert (out / "checkpoints" / "last.ckpt").is_file()
    if cfg.test:
        assert "test/loss" in metrics


def test_a_language_model_over_a_compiled_cell_trains_as_over_the_eager_one(
    lm_data, cache_dir, tmp_path
) -> None:
    """Catches `model.compile_chunk` breaking the LM: the state carried between truncated-BPTT
    windows and validation streams, the decoder over every step's output, the test pass."""
    runs = {}
    for name, extra in (("eager", []), ("compiled", ["model.compile_chunk=4"])):
        out = tmp_path / name
        out.mkdir()
        runs[name] = _train_in_process(
            LM_EXPERIMENT, out, lm_data, cache_dir, "model=elman", *extra
        )
    assert runs["compiled"]["compile_graphs"] >= 1 and "compile_graphs" not in runs["eager"]
    for metric in ("val/ppl_best", "test/loss"):
        assert runs["compiled"][metric] == pytest.approx(runs["eager"][metric], rel=1e-4)


def test_eval_scores_a_language_model_checkpoint_as_training_did(
    lm_run, lm_data, cache_dir, tmp_path, capsys
) -> None:
    trained = json.loads((lm_run / "metrics.json").read_text())
    ckpt = f"ckpt_path={lm_run / 'checkpoints' / 'best.ckpt'}"
    overrides = [ckpt, "trainer.accelerator=cpu", "trainer.limit_test_batches=2"]  # as trained
    cfg = compose_cfg("eval", overrides, tmp_path, cache_dir, lm_data)
    evaluated = evaluate(cfg)
    assert np.isfinite(trained["test/ppl"])
    assert evaluated["test/ppl"] == pytest.approx(trained["test/ppl"], rel=1e-6)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        predict(OmegaConf.create({"ckpt_path": ckpt[len("ckpt_path=") :], "text": "a film"}))
    assert capsys.readouterr().err.endswith(
        "a language model; it continues texts with generate.py\n"
    )
