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
from tests.run.pause import read_steps, record_steps

pytestmark = pytest.mark.slow

# 216 training reviews in batches of 8: 27 steps an epoch, 81 in 3 epochs. last.ckpt every 10
# steps, so the kill at step 37 (epoch 1, its 11th batch) loses 7 steps and resumes inside
# epoch 1, at step 30.
STEPS_PER_EPOCH = 27
MAX_EPOCHS = 3
TOTAL_STEPS = STEPS_PER_EPOCH * MAX_EPOCHS
SAVE_EVERY = 10
KILL_AT = 37
WALL_CLOCK = {"train_time_s", "train_tokens_per_s", "startup_s", "best_ckpt_path", "output_dir"}


def run_args(hub_dir: Path, cache_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        *TINY,
        "model=gru",  # dropout 0.3: the resumed run must draw the same dropout masks
        f"trainer.max_epochs={MAX_EPOCHS}",
        "callbacks.early_stopping=null",
        f"callbacks.last_checkpoint.every_n_train_steps={SAVE_EVERY}",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def env() -> dict[str, str]:
    # this checkout's src first: the editable install may point at another copy of the project
    pythonpath = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": pythonpath, "HYDRA_FULL_ERROR": "1"}


def train(args: list[str], cwd: Path) -> dict:
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = Path(next(a for a in args if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    return json.loads((run_dir / "metrics.json").read_text())


def without_wall_clock(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in WALL_CLOCK}


def start_paused(
    hub_dir: Path, cache_dir: Path, run_dir: Path, step: int
) -> tuple[subprocess.Popen, Path]:
    """A training process standing still after optimizer step `step` (tests.run.pause)."""
    marker, log = run_dir.parent / "paused", run_dir.parent / "paused.log"
    pause = [
        "+callbacks.pause._target_=tests.run.pause.PauseAtStep",
        f"+callbacks.pause.step={step}",
        f"+callbacks.pause.marker={marker}",
    ]
    with log.open("w") as stderr:  # a file, not a pipe that could fill up and block the run
        process = subprocess.Popen(
            run_args(hub_dir, cache_dir, run_dir, *pause),
            cwd=run_dir.parent,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), log.read_text()[-3000:]
    # the step is mid-epoch: the epoch and the index of the batch that took it
    assert marker.read_text() == f"{step // STEPS_PER_EPOCH} {step % STEPS_PER_EPOCH - 1}"
    return process, log


_UNINTERRUPTED: dict[tuple[Path, Path], dict] = {}


def uninterrupted_run(
    hub_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The uninterrupted run, trained once a session (test_interrupt compares with it too):
    `metrics` (its metrics.json) and `steps` (what tests.run.pause.RecordSteps wrote)."""
    if (hub_dir, cache_dir) not in _UNINTERRUPTED:
        run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
        steps = run_dir.parent / "steps.json"
        args = run_args(hub_dir, cache_dir, run_dir, *record_steps(steps))
        metrics = train(args, run_dir.parent)
        _UNINTERRUPTED[hub_dir, cache_dir] = {"metrics": metrics, "steps": read_steps(steps)}
    return _UNINTERRUPTED[hub_dir, cache_dir]


@pytest.fixture(scope="module")
def uninterrupted(hub_dir, cache_dir, tmp_path_factory) -> dict:
    return uninterrupted_run(hub_dir, cache_dir, tmp_path_factory)


def check_resumed(steps: Path, metrics: dict, uninterrupted: dict, saved_at: int) -> None:
    """The resumed process started at `saved_at`, mid-epoch, trained only the steps that remained
    and ended with the uninterrupted run's weights and metrics."""
    record = read_steps(steps)
    weights = record.pop("weights")
    remaining = TOTAL_STEPS - saved_at
    assert record == {
        "first_step": saved_at,
        "first_batch": [saved_at // STEPS_PER_EPOCH, saved_at % STEPS_PER_EPOCH],
        "batches": remaining,
        "optimizer_steps": remaining,
        "last_step": TOTAL_STEPS,
    }
    assert weights == uninterrupted["steps"]["weights"], "other final weights than uninterrupted"
    assert without_wall_clock(metrics) == without_wall_clock(uninterrupted["metrics"])


def test_sigkill_mid_epoch_then_resume_from_last_equals_an_uninterrupted_run(
    uninterrupted, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches a resume that does not resume: ckpt_path dropped from trainer.fit (a same-seed run
    from scratch reaches the same metrics, so only the steps the resumed process itself ran tell
    it apart), a resume that restarts the epoch or skips to the next one (the train loader's
    place not restored), and one whose dropout masks differ (the RNG state not restored)."""
    run_dir = tmp_path / "run"
    process, _ = start_paused(hub_dir, cache_dir, run_dir, KILL_AT)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()

    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    saved_at = KILL_AT // SAVE_EVERY * SAVE_EVERY  # 30: the last periodic save before the kill
    assert (last["global_step"], last["epoch"]) == (saved_at, 1)

    steps = tmp_path / "steps.json"
    args = run_args(hub_dir, cache_dir, run_dir, "ckpt_path=last", *record_steps(steps))
    check_resumed(steps, train(args, tmp_path), uninterrupted, saved_at)


def test_two_runs_with_the_same_seed_write_identical_metrics(
    uninterrupted, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches a run that is not reproducible from its seed (which every resume test relies on)."""
    again = train(run_args(hub_dir, cache_dir, tmp_path / "run"), tmp_path)
    assert without_wall_clock(again) == without_wall_clock(uninterrupted["metrics"])


def test_deterministic_trainer_runs_and_matches_itself(hub_dir, cache_dir, tmp_path) -> None:
    """Catches trainer.deterministic=true failing (an op without a deterministic kernel) or not
    reproducing itself."""
    runs = [
        train(run_args(hub_dir, cache_dir, tmp_path / name, "trainer.deterministic=true"), tmp_path)
        for name in ("a", "b")
    ]
    assert without_wall_clock(runs[0]) == without_wall_clock(runs[1])


def test_resuming_in_place_reuses_the_runs_config_and_refuses_a_changed_model_untouched(
    hub_dir, cache_dir, tmp_path
) -> None:
    """Catches a resume in place that needs the run's overrides typed again, one that rewrites
    the run's saved config (or its config tree) before refusing a checkpoint of another model,
    and a resume with more epochs that crashes on the checkpoint's schedule length (OneCycle)."""
    run_dir = tmp_path / "run"
    train(run_args(hub_dir, cache_dir, run_dir, "trainer.max_epochs=1"), tmp_path)
    kept = {
        name: (run_dir / name).read_bytes() for name in (".hydra/config.yaml", "config_tree.log")
    }
    resume = [sys.executable, str(ROOT / "train.py"), "ckpt_path=last", f"hydra.run.dir={run_dir}"]

    without_full_error = {k: v for k, v in env().items() if k != "HYDRA_FULL_ERROR"}
    refused = subprocess.run(
        [*resume, "model=lstm"],
        cwd=tmp_path,
        env=without_full_error,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=")
    assert "different architecture" in refused.stderr
    assert {name: (run_dir / name).read_bytes() for name in kept} == kept

    steps = tmp_path / "steps.json"
    train([*resume, "trainer.max_epochs=2", *record_steps(steps)], tmp_path)
    assert read_steps(steps)["last_step"] == 2 * STEPS_PER_EPOCH
    saved = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert f"data.path={hub_dir}" in saved and "trainer.max_epochs=2" in saved
