"""Resuming in place composes the run's saved overrides, with those given now winning."""

from pathlib import Path

import yaml

from rnnlab.utils.resume import DEFER_SAVING, SAVED_OVERRIDES, resume_arguments


def _run_dir(tmp_path: Path, overrides: list[str]) -> Path:
    (tmp_path / SAVED_OVERRIDES).parent.mkdir(parents=True)
    (tmp_path / SAVED_OVERRIDES).write_text(yaml.safe_dump(overrides))
    return tmp_path


def test_resuming_in_place_puts_the_saved_overrides_first_and_the_given_ones_win(
    tmp_path,
) -> None:
    run = _run_dir(tmp_path, ["model=gru", "trainer.max_epochs=1", "+callbacks.pause.step=3"])
    argv = ["ckpt_path=last", f"hydra.run.dir={run}", "trainer.max_epochs=2"]
    assert resume_arguments(argv) == [
        "model=gru",
        "+callbacks.pause.step=3",
        *argv,
        DEFER_SAVING,
    ]


def test_a_deletion_given_on_resume_drops_the_saved_keys_below_it(tmp_path) -> None:
    run = _run_dir(tmp_path, ["model=gru", "+callbacks.pause.step=3", "+callbacks.pauses=1"])
    argv = ["ckpt_path=last", f"hydra.run.dir={run}", "~callbacks.pause"]
    assert resume_arguments(argv) == ["model=gru", "+callbacks.pauses=1", *argv, DEFER_SAVING]


def test_other_command_lines_are_left_alone(tmp_path) -> None:
    """Catches the saved overrides leaking into a run that is not a resume in place: another
    checkpoint, a new run directory, a multirun, or a directory without saved overrides."""
    run = _run_dir(tmp_path / "run", ["model=gru"])
    for argv in (
        [f"ckpt_path={run}/checkpoints/last.ckpt", f"hydra.run.dir={run}"],
        ["ckpt_path=last"],
        ["-m", "ckpt_path=last", f"hydra.run.dir={run}"],
        ["ckpt_path=last", f"hydra.run.dir={tmp_path / 'elsewhere'}"],
    ):
        assert resume_arguments(argv) == argv
