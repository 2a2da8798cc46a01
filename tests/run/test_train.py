import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.run.train import train
from tests.conftest import ROOT, TINY, compose_cfg
from tests.models.conftest import ENCODERS
from tests.run.pause import read_steps, record_steps

# a fixed number of epochs, so that resuming has a known place to continue from
NO_EARLY_STOP = "callbacks.early_stopping=null"


@pytest.fixture(scope="module")
def trained_run(hub_dir, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = compose_cfg(
        "train",
        [*TINY, "model=gru", "trainer.max_epochs=5", "model.optimizer.lr=0.03", NO_EARLY_STOP],
        out,
        cache_dir,
        hub_dir,
    )
    train(cfg)
    return out


@pytest.mark.parametrize("cell", ENCODERS)
def test_fast_dev_run_trains_validates_and_tests_every_cell(
    cell, hub_dir, cache_dir, tmp_path
) -> None:
    cfg = compose_cfg("train", [*TINY, f"model={cell}", "debug=fdr"], tmp_path, cache_dir, hub_dir)
    metrics = train(cfg)
    assert {"test/acc", "test/f1", "test/auroc", "test/loss"} <= metrics.keys()


def test_run_directory_holds_checkpoints_and_complete_metrics(trained_run: Path) -> None:
    assert (trained_run / "checkpoints" / "best.ckpt").is_file()
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((trained_run / "metrics.json").read_text())
    for key in (
        "test/acc",
        "test/f1",
        "test/auroc",
        "test/loss",
        "val/acc_best",
        "best_ckpt_path",
        "train_time_s",
        "trainable_params",
        "train_tokens_per_s",
    ):
        assert key in metrics
    assert metrics["test/acc"] > 0.9  # the synthetic task is easy


def test_checkpoint_carries_tokenizer_data_settings_and_model_config(trained_run: Path) -> None:
    ckpt = torch.load(trained_run / "checkpoints" / "best.ckpt", weights_only=True)
    assert '"<pad>"' in ckpt["meta"]["tokenizer_json"]
    assert ckpt["meta"]["label_names"] == ["neg", "pos"]
    assert ckpt["meta"]["data_config"]["max_len"] == 400
    assert ckpt["model_config"]["encoder"]["_target_"].endswith("GRUEncoder")


def _run(
    script: str, *args: str, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_eval_from_checkpoint_reproduces_the_training_test_metrics(
    trained_run, hub_dir, cache_dir, tmp_path
) -> None:
    result = _run(
        "eval.py",
        f"ckpt_path={trained_run / 'checkpoints' / 'best.ckpt'}",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={tmp_path}",
        "trainer.accelerator=cpu",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    trained = json.loads((trained_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test/acc", "test/f1", "test/auroc", "test/loss"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6)


def test_predict_needs_only_the_checkpoint(trained_run, tmp_path) -> None:
    ckpt = trained_run / "checkpoints" / "best.ckpt"
    lines = (
        "A wonderful, superb film.\nAwful and boring, a waste.\n\n"
        + "x" * 100_000
        + "\nČeský 映画 🎬\n"
    )
    result = _run("predict.py", f"ckpt_path={ckpt}", cwd=tmp_path, stdin=lines)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 5
    assert answers[0]["label"] == "pos" and answers[1]["label"] == "neg"
    assert all(0.0 <= a["prob_pos"] <= 1.0 for a in answers)
    single = _run("predict.py", f"ckpt_path={ckpt}", "text=Loved it, brilliant.", cwd=tmp_path)
    assert json.loads(single.stdout)["label"] == "pos"


def test_resume_from_last_checkpoint_continues_training(hub_dir, cache_dir, tmp_path) -> None:
    """Catches ckpt_path dropped from trainer.fit: a same-seed run of 3 epochs from scratch ends at
    the same epoch and step, so the steps the resumed run itself trained are counted
    (tests.run.pause.RecordSteps): it must start at the checkpoint's step and train one epoch."""
    base = [*TINY, "model=gru", NO_EARLY_STOP]
    train(compose_cfg("train", [*base, "trainer.max_epochs=2"], tmp_path / "a", cache_dir, hub_dir))
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    steps_before = torch.load(last, weights_only=True)["global_step"]
    epoch_steps = steps_before // 2
    steps = tmp_path / "steps.json"
    overrides = [*base, "trainer.max_epochs=3", f"ckpt_path={last}", *record_steps(steps)]
    train(compose_cfg("train", overrides, tmp_path / "b", cache_dir, hub_dir))
    record = read_steps(steps)
    record.pop("weights")
    assert record == {
        "first_step": steps_before,
        "first_batch": [2, 0],
        "batches": epoch_steps,
        "optimizer_steps": epoch_steps,
        "last_step": steps_before + epoch_steps,
    }
    resumed = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2
    assert resumed["global_step"] == steps_before + epoch_steps


def test_acl_layout_trains_end_to_end(acl_dir, cache_dir, tmp_path) -> None:
    cfg = compose_cfg("train", [*TINY, "model=rnn", "debug=fdr"], tmp_path, cache_dir, acl_dir)
    assert "test/acc" in train(cfg)
