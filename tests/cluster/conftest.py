"""The local two-node SLURM cluster of scripts/local_slurm.sh, for the `slurm` tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.run.two_ranks import env

SCRIPT = ROOT / "scripts" / "local_slurm.sh"


def _script(command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment that submits to the local cluster (SLURM_CONF set). Started here when it
    is not running (installing SLURM with apt where it is missing), stopped at the end only
    then; where it cannot be started, the tests are skipped with the script's one-line reason."""
    if shutil.which("bash") is None:
        pytest.skip("no bash to run scripts/local_slurm.sh")
    started = _script("status", timeout=60).returncode != 0
    if started:
        start = _script("start", timeout=900)
        if start.returncode != 0:
            _script("stop", timeout=120)  # the daemons a failed start did launch
            lines = start.stderr.strip().splitlines() or [f"exited {start.returncode}"]
            pytest.skip(lines[-1])
    state = Path(os.environ.get("RNNLAB_SLURM_DIR", "/tmp/rnnlab-slurm"))
    try:
        yield env(SLURM_CONF=str(state / "slurm.conf"))
    finally:
        if started:
            _script("stop", timeout=120)
