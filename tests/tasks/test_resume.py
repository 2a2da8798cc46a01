"""Kill -9 mid-epoch, resume with ckpt_path=last, and land on the uninterrupted run's metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, TINY

pytestmark = pytest.mark.slow

# 216 training reviews in batches of 8: 27 steps an epoch. last.ckpt every 10 steps, so the
# kill at step 37 (epoch 1, its 11th batch) loses 7 steps and resumes inside epoch 1.
STEPS_PER_EPOCH = 27
SAVE_EVERY = 10
KILL_AT = 37
WALL_CLOCK = {"train_time_s", "train_tokens_per_s", "best_ckpt_path", "output_dir"}


def run_args(hub_dir: Path, cache_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        *TINY,
        "model=gru",  # dropout 0.3: the resumed run must draw the same dropout masks
        "trainer.max_epochs=3",
        "callbacks.early_stopping=null",
        f"callbacks.last_checkpoint.every_n_train_steps={SAVE_EVERY}",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}


def train(args: list[str], cwd: Path) -> dict:
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(next(a for a in args if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    return json.loads((run_dir / "metrics.json").read_text())


def without_wall_clock(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in WALL_CLOCK}


@pytest.fixture(scope="module")
def uninterrupted(hub_dir, cache_dir, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    return train(run_args(hub_dir, cache_dir, run_dir), run_dir.parent)


def test_sigkill_mid_epoch_then_resume_from_last_equals_an_uninterrupted_run(
    uninterrupted, hub_dir, cache_dir, tmp_path
) -> None:
    run_dir, marker = tmp_path / "run", tmp_path / "paused"
    pause = [
        "+callbacks.pause._target_=tests.tasks.pause.PauseAtStep",
        f"+callbacks.pause.step={KILL_AT}",
        f"+callbacks.pause.marker={marker}",
    ]
    process = subprocess.Popen(
        run_args(hub_dir, cache_dir, run_dir, *pause),
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), process.communicate()[1][-3000:]
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert marker.read_text() == f"1 {KILL_AT - STEPS_PER_EPOCH - 1}"  # mid-epoch, not at its end
    assert not (run_dir / "metrics.json").exists()

    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 30 and last["epoch"] == 1

    resumed = train(run_args(hub_dir, cache_dir, run_dir, "ckpt_path=last"), tmp_path)
    assert without_wall_clock(resumed) == without_wall_clock(uninterrupted)


def test_two_runs_with_the_same_seed_write_identical_metrics(
    uninterrupted, hub_dir, cache_dir, tmp_path
) -> None:
    again = train(run_args(hub_dir, cache_dir, tmp_path / "run"), tmp_path)
    assert without_wall_clock(again) == without_wall_clock(uninterrupted)


def test_deterministic_trainer_runs_and_matches_itself(hub_dir, cache_dir, tmp_path) -> None:
    runs = [
        train(run_args(hub_dir, cache_dir, tmp_path / name, "trainer.deterministic=true"), tmp_path)
        for name in ("a", "b")
    ]
    assert without_wall_clock(runs[0]) == without_wall_clock(runs[1])
