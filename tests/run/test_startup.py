"""A cached start reaches its first training step without the heavy imports it does not need."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

# Imported only where they are used: building the data cache (datasets), a wandb logger or
# sweep (wandb, sweeps), a hyperparameter search (optuna). matplotlib is not listed: Lightning's
# torchmetrics imports it whenever it is installed.
LAZY = ["datasets", "wandb", "sweeps", "optuna", "sklearn"]


def _start(hub_dir: Path, cache: Path, out: Path) -> list[str]:
    out.mkdir()
    probe = out / "modules.json"
    args = [
        *TINY,
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache}",
        f"hydra.run.dir={out}",
        "+callbacks.probe._target_=tests.run.pause.ModulesAtFirstStep",
        f"+callbacks.probe.watch={json.dumps(LAZY)}",
        f"+callbacks.probe.out={probe}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(probe.read_text())


@pytest.mark.slow
def test_cached_train_start_imports_none_of_the_lazy_packages(hub_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    first = _start(hub_dir, cache, tmp_path / "cold")
    assert "datasets" in first  # the cold start builds the cache with datasets: the probe sees it
    assert _start(hub_dir, cache, tmp_path / "cached") == []
