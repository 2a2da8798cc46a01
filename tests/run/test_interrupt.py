"""SIGTERM mid-epoch (a scheduler pre-empting the job): exit 143 with a last.ckpt of the very step
it stopped at, and resume from it onto the uninterrupted run's metrics."""

import signal

import pytest
import torch

from tests.run.pause import record_steps
from tests.run.test_resume import (
    SAVE_EVERY,
    STEPS_PER_EPOCH,
    check_resumed,
    run_args,
    start_paused,
    train,
    uninterrupted_run,
)

pytestmark = pytest.mark.slow

# Off every ordinary save: last.ckpt is written every 10 steps (the run shared with
# test_resume) and at each epoch's end (27 steps), so a last.ckpt at step 34 is the SIGTERM one.
TERM_AT = 34


@pytest.fixture(scope="module")
def uninterrupted(hub_dir, cache_dir, tmp_path_factory) -> dict:
    return uninterrupted_run(hub_dir, cache_dir, tmp_path_factory)


def test_sigterm_mid_epoch_exits_143_with_a_last_checkpoint_that_resumes_exactly(
    uninterrupted, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches SaveOnInterrupt not saving (last.ckpt would hold step 30, the periodic save), the
    wrapper exiting 0 or 1 on SIGTERM instead of 143 (Lightning's SIGTERMException is a
    SystemExit(0); a scheduler would think the job done), and a checkpoint that does not resume
    where it stopped (ckpt_path dropped, the loader's place or the RNG state not restored)."""
    assert TERM_AT % SAVE_EVERY and TERM_AT % STEPS_PER_EPOCH  # no ordinary save at TERM_AT
    run_dir = tmp_path / "run"
    process, log = start_paused(hub_dir, cache_dir, run_dir, TERM_AT)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    tail = log.read_text()[-3000:]
    assert process.returncode == 128 + signal.SIGTERM, f"exit {process.returncode}\n{tail}"
    assert not (run_dir / "metrics.json").exists()

    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["global_step"], last["epoch"]) == (TERM_AT, 1), "not the SIGTERM save"

    steps = tmp_path / "steps.json"
    args = run_args(hub_dir, cache_dir, run_dir, "ckpt_path=last", *record_steps(steps))
    check_resumed(steps, train(args, tmp_path), uninterrupted, TERM_AT)
