"""One training run on two DDP ranks, and the reference every other way of starting those two
ranks must reproduce: `python train.py trainer.devices=2 trainer.strategy=ddp` on this machine.

torchrun across two "nodes" (tests/run/test_torchrun.py), two SLURM nodes and a submitit job
(tests/cluster/test_slurm.py) and a run resumed after a rank died (tests/run/test_dead_rank.py)
compare their metrics.json with it, wall-clock keys aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

# 216 training reviews in batches of 8 are 27 batches an epoch; two ranks take 14 each (the
# largest batch is halved), so 2 epochs are 28 optimizer steps. last.ckpt every 10 steps.
STEPS_PER_EPOCH = 14
MAX_EPOCHS = 2
SAVE_EVERY = 10
WALL_CLOCK = {"train_time_s", "train_tokens_per_s", "startup_s", "best_ckpt_path", "output_dir"}
TWO_PROCESSES = ["trainer.devices=2", "trainer.strategy=ddp"]


def overrides(hub_dir: Path, cache_dir: Path, run_dir: Path | None, *extra: str) -> list[str]:
    """The run's overrides, without how its ranks are started (devices, nodes, strategy);
    run_dir None leaves hydra.run.dir to the launcher."""
    return [
        *TINY,
        "model=gru",  # dropout 0.3: each rank's dropout masks come from its own seeded stream
        "model.optimizer.lr=0.03",  # learns within 2 epochs: val/acc about 0.9
        f"trainer.max_epochs={MAX_EPOCHS}",
        "callbacks.early_stopping=null",
        f"callbacks.last_checkpoint.every_n_train_steps={SAVE_EVERY}",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        *([f"hydra.run.dir={run_dir}"] if run_dir else []),
        *extra,
    ]


def env(**extra: str) -> dict[str, str]:
    """This checkout's src first (the editable install may point at another copy of the
    project), and the repo root, whose tests.run.pause callbacks the ranks import."""
    pythonpath = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": pythonpath, **extra}


def without_wall_clock(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in WALL_CLOCK}


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


_REFERENCE: dict[tuple, dict] = {}


def reference_metrics(
    hub_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory, *extra: str
) -> dict:
    """metrics.json of `python train.py trainer.devices=2 trainer.strategy=ddp` with these
    overrides, trained once a session."""
    key = (hub_dir, cache_dir, extra)
    if key not in _REFERENCE:
        run_dir = tmp_path_factory.mktemp("two_ranks") / "run"
        args = overrides(hub_dir, cache_dir, run_dir, *TWO_PROCESSES, *extra)
        done = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), *args],
            cwd=run_dir.parent,
            env=env(),
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        metrics = read_metrics(run_dir)
        assert metrics["val/acc_best"] > 0.7, metrics  # it learned (chance: 0.5)
        _REFERENCE[key] = metrics
    return _REFERENCE[key]
