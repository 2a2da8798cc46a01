"""Each logger preset writes its files on a fresh install, the gradient-flow image included; a
resumed wandb run continues the same run; a run that never validates still finishes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnlab.run.train import train
from rnnlab.utils.instantiate import WANDB_ID_FILE
from tests.conftest import TINY, compose_cfg

# a few steps; the gradient flow is measured at the start and the end of training
FEW_STEPS = [*TINY, "model=gru", "trainer.max_epochs=1", "trainer.limit_train_batches=4"]


def _tensorboard_images(out: Path) -> list[str]:
    [events] = {p.parent for p in (out / "tensorboard").rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator.Tags()["images"]


def _wandb_images(out: Path) -> list[Path]:
    [run] = (out / "wandb").glob("offline-run-*")
    return sorted(run.glob("files/media/images/gradient_flow_*.png"))


def _run(logger: str, out: Path, hub_dir, cache_dir, *overrides: str) -> dict:
    cfg = compose_cfg(
        "train", [*FEW_STEPS, f"logger={logger}", *overrides], out, cache_dir, hub_dir
    )
    return train(cfg)


@pytest.fixture
def wandb_offline(monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.mark.slow
@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb", "many_loggers"])
def test_each_logger_writes_its_files(logger, wandb_offline, hub_dir, cache_dir, tmp_path) -> None:
    _run(logger, tmp_path, hub_dir, cache_dir)
    if logger in ("csv", "many_loggers"):
        assert list((tmp_path / "csv").rglob("metrics.csv"))
    if logger in ("tensorboard", "many_loggers"):
        assert _tensorboard_images(tmp_path) == ["gradient_flow"]
    if logger in ("wandb", "many_loggers"):
        assert len(_wandb_images(tmp_path)) >= 2  # at the start and at the end
    assert (tmp_path / "config_tree.log").read_text().startswith("config")


@pytest.mark.slow
def test_a_resumed_wandb_run_continues_the_same_run(
    wandb_offline, hub_dir, cache_dir, tmp_path
) -> None:
    _run("wandb", tmp_path, hub_dir, cache_dir, "model.scheduler=null")
    run_id = (tmp_path / WANDB_ID_FILE).read_text().strip()
    _run(
        "wandb",
        tmp_path,
        hub_dir,
        cache_dir,
        "model.scheduler=null",
        "ckpt_path=last",
        "trainer.max_epochs=2",
    )
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    # offline-run-<time>-<id>; a second start within the same second gets a "-1" suffix
    assert all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", r.name) for r in runs)
    assert (tmp_path / WANDB_ID_FILE).read_text().strip() == run_id


def test_a_run_that_stops_before_validating_finishes_and_says_so_once(
    hub_dir, cache_dir, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.WARNING):
        metrics = _run("csv", tmp_path, hub_dir, cache_dir, "trainer.max_steps=3")
    assert "test/acc" in metrics and "val/acc_best" not in metrics
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "checkpoints" / "best.ckpt").exists()
    said = [r.getMessage() for r in caplog.records if "val/acc" in r.getMessage()]
    assert said == [
        "Training ended before any val/acc was measured (no validation ran): early stopping and "
        "the best checkpoint had no val/acc to go by; the last checkpoint is kept and the current "
        "weights are tested"
    ]
