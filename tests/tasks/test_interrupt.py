import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, TINY

pytestmark = pytest.mark.slow


def test_sigterm_mid_training_saves_a_resumable_last_checkpoint(
    hub_dir, cache_dir, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    args = [
        *[a for a in TINY if not a.startswith("callbacks.")],
        "callbacks.progress_bar=null",
        "callbacks.early_stopping=null",
        "model=gru",
        "trainer.max_epochs=500",
        "trainer.log_every_n_steps=1",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics_csv = run_dir / "csv" / "version_0" / "metrics.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if metrics_csv.is_file() and metrics_csv.read_text().count("\n") > 5:
            break
        time.sleep(0.5)
    assert process.poll() is None, process.communicate()[1][-2000:]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_file(), stderr[-2000:]
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["global_step"] > 0
    assert not (run_dir / "metrics.json").exists()
