"""What every model shares: the optimizer and the schedule, over any run length."""

import pytest

from tests.conftest import item_loader, quiet_trainer
from tests.models.conftest import classifier, keyword_items


@pytest.mark.parametrize("steps", [1, 2, 3, 10, 11, 40])
@pytest.mark.parametrize("pct_start", [0.1, 0.5])
def test_the_one_cycle_schedule_runs_for_any_number_of_steps(steps, pct_start) -> None:
    """Catches torch's OneCycle dividing by zero when pct_start x steps is exactly 1 (10 steps
    at the default 0.1, 2 at 0.5), and a schedule that does not end at its last step."""
    model = classifier("gru", "max", f"model.scheduler.pct_start={pct_start}")
    trainer = quiet_trainer(max_steps=steps)
    trainer.fit(model, item_loader(keyword_items(n=8 * steps), 8))
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.global_step == steps and scheduler.total_steps == steps
    assert scheduler.last_epoch == steps


def test_a_resumed_run_with_more_steps_follows_the_schedule_planned_for_its_new_length(
    tmp_path,
) -> None:
    """Catches a resumed run keeping the checkpoint's schedule (OneCycle raises when stepped past
    its planned end) or restarting it from step 0: after resuming a 6-step run to 12 steps, the
    learning rate at each step is that of a run planned for 12 steps from the start."""
    items = item_loader(keyword_items(n=8 * 6), 8)

    def lrs_after_fit(trainer) -> list[float]:
        return [g["lr"] for g in trainer.optimizers[0].param_groups]

    planned = quiet_trainer(max_epochs=2)
    planned.fit(classifier("gru"), items)

    short = quiet_trainer(max_epochs=1, enable_checkpointing=True, default_root_dir=tmp_path)
    short.fit(classifier("gru"), items)
    short.save_checkpoint(tmp_path / "short.ckpt")
    resumed = quiet_trainer(max_epochs=2)
    resumed.fit(classifier("gru"), items, ckpt_path=tmp_path / "short.ckpt")

    scheduler = resumed.lr_scheduler_configs[0].scheduler
    assert resumed.global_step == 12 and scheduler.total_steps == 12
    assert lrs_after_fit(resumed) == pytest.approx(lrs_after_fit(planned))
