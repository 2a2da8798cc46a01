"""A DDP rank killed mid-epoch: the other rank stops at once in one line, and the run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from tests.run.pause import read_steps, record_steps
from tests.run.two_ranks import (
    SAVE_EVERY,
    STEPS_PER_EPOCH,
    TWO_PROCESSES,
    env,
    overrides,
    read_metrics,
    reference_metrics,
    without_wall_clock,
)

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

KILL_AT = 13  # mid-epoch 0 (14 steps a rank), after the periodic save at step 10
# Exact resume under DDP needs no dropout: the checkpoint carries rank 0's RNG state only, which
# every rank restores (rank 1's own stream is lost; its masks would differ after the resume)
NO_DROPOUT = ("model.dropout=0",)


def train_args(hub_dir: Path, cache_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        *overrides(hub_dir, cache_dir, run_dir, *TWO_PROCESSES, *NO_DROPOUT, *extra),
    ]


def test_a_killed_rank_stops_the_other_in_one_line_and_the_run_resumes_from_last(
    hub_dir, cache_dir, tmp_path, tmp_path_factory
) -> None:
    """Catches the surviving rank hanging in its collective (gloo waiting for a peer that is
    gone, up to the 30-minute process-group timeout) or ending in a traceback from inside
    torch.distributed instead of one `error:` line that says how to resume; and a run that
    cannot be resumed after it (ckpt_path=last must start at the periodic save, step 10, and
    end where a run that was never interrupted ends)."""
    reference = reference_metrics(hub_dir, cache_dir, tmp_path_factory, *NO_DROPOUT)
    run_dir, marker, log = tmp_path / "run", tmp_path / "paused", tmp_path / "ranks.log"
    pause = [
        "+callbacks.pause._target_=tests.run.pause.PauseAtStep",
        f"+callbacks.pause.step={KILL_AT}",
        f"+callbacks.pause.marker={marker}",
        "+callbacks.pause.rank=1",  # rank 0 runs on into the next all-reduce and waits there
    ]
    args = train_args(hub_dir, cache_dir, run_dir, *pause)
    with log.open("w") as stderr:  # a file, not a pipe that could fill up and block the run
        rank0 = subprocess.Popen(
            args, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and rank0.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), log.read_text()[-3000:]
        assert marker.read_text() == f"0 {KILL_AT - 1}"  # epoch 0, mid-epoch
        rank1 = int(Path(f"{marker}.pid").read_text())
        assert rank1 != rank0.pid  # Lightning started rank 1 as a child process
        time.sleep(1)  # rank 0 is waiting in the all-reduce of step 14 by now
        os.kill(rank1, signal.SIGKILL)
        try:
            code = rank0.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"rank 0 still running 60 s after rank 1 was killed\n{log.read_text()[-3000:]}"
            )
    finally:
        if rank0.poll() is None:
            rank0.kill()
    text = log.read_text()
    lines = text.strip().splitlines()
    assert code == 1, f"exit {code}\n{text[-3000:]}"
    assert lines[-1].startswith("error: a DDP rank stopped ("), text[-3000:]
    assert lines[-1].endswith(f"resume with ckpt_path=last hydra.run.dir={run_dir}")
    assert "Traceback" not in text
    assert not (run_dir / "metrics.json").exists()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == SAVE_EVERY

    steps = tmp_path / "steps.json"
    resume = train_args(hub_dir, cache_dir, run_dir, *pause, "ckpt_path=last", *record_steps(steps))
    done = subprocess.run(
        resume, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = read_steps(steps)
    assert (record["first_step"], record["first_batch"]) == (SAVE_EVERY, [0, SAVE_EVERY])
    assert record["last_step"] == 2 * STEPS_PER_EPOCH
    assert without_wall_clock(read_metrics(run_dir)) == without_wall_clock(reference)
