"""Another dataset end to end: four classes, its own validation split and other column names,
trained, evaluated from the checkpoint alone and predicted with its label names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.run.train import train
from tests.conftest import ROOT, TINY, compose_cfg

TOPICS = ["data=hf", "data.text_column=sentence", "data.label_column=topic"]
TOPICS += ["data.num_classes=4", "data.val_split=validation", "data.max_len=64"]


@pytest.fixture(scope="module")
def topic_run(multiclass_dir, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("topics")
    overrides = [*TINY, *TOPICS, "model=gru", "trainer.max_epochs=6", "model.optimizer.lr=0.03"]
    train(compose_cfg("train", overrides, out, cache_dir, multiclass_dir))
    return out


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_four_class_dataset_trains_with_multiclass_metrics(topic_run: Path) -> None:
    metrics = json.loads((topic_run / "metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss"} <= metrics.keys()
    assert "test/auroc" not in metrics  # binary only
    assert metrics["test/acc"] > 0.8  # four classes: chance is 0.25


def test_the_checkpoint_carries_label_names_and_the_data_modules_config(topic_run: Path) -> None:
    ckpt = torch.load(topic_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["meta"]["label_names"] == ["world", "sports", "business", "science"]
    data = ckpt["meta"]["data_config"]
    assert (data["text_column"], data["label_column"], data["val_split"]) == (
        "sentence",
        "topic",
        "validation",
    )


def test_eval_rebuilds_the_other_data_module_from_the_checkpoint(
    topic_run: Path, cache_dir: Path, tmp_path: Path
) -> None:
    ckpt = topic_run / "checkpoints" / "best.ckpt"
    args = [f"ckpt_path={ckpt}", f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}"]
    result = _run("eval.py", *args, "trainer.accelerator=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    trained = json.loads((topic_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test/acc", "test/f1", "test/loss"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6)


def test_eval_reads_the_data_from_a_new_place_when_told(
    topic_run: Path, multiclass_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    moved.symlink_to(multiclass_dir, target_is_directory=True)
    ckpt = topic_run / "checkpoints" / "best.ckpt"
    args = [f"ckpt_path={ckpt}", f"data.path={moved}", f"paths.cache_dir={tmp_path / 'cache'}"]
    result = _run(
        "eval.py", *args, f"hydra.run.dir={tmp_path}", "trainer.accelerator=cpu", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] > 0.8


def test_predict_names_the_four_classes(topic_run: Path, tmp_path: Path) -> None:
    ckpt = topic_run / "checkpoints" / "best.ckpt"
    result = _run("predict.py", f"ckpt_path={ckpt}", "text=the match and the goal", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert set(answer["probs"]) == {"world", "sports", "business", "science"}
    assert answer["label"] == max(answer["probs"], key=answer["probs"].get)


def test_eval_without_a_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    result = _run("eval.py", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: ckpt_path=None: required; pass ckpt_path=<run>/checkpoints/best.ckpt"
    )
