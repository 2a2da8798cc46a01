"""`python -m rnnlab.tools.gradflow_plot` overlays runs through the callback's own drawing."""

import pytest

from rnnlab.callbacks.gradient_flow import CSV_NAME
from rnnlab.tools.gradflow_plot import main
from tests.conftest import PNG_MAGIC


def _run(root, name: str, decay: float):
    """A run dir holding the callback's CSV: two measurements, a norm falling by `decay`."""
    run = root / name
    (run / "gradient_flow").mkdir(parents=True)
    rows = [f"{step},{d},{decay**d}" for step in (0, 50) for d in range(10)]
    (run / "gradient_flow" / CSV_NAME).write_text(
        "global_step,distance_from_end,grad_norm\n" + "\n".join(rows) + "\n"
    )
    return run


def test_runs_are_overlaid_into_one_png(tmp_path) -> None:
    runs = [str(_run(tmp_path, "rnn", 0.5)), str(_run(tmp_path, "lstm", 0.99))]
    main([*runs, "--which", "last", "--max-distance", "5", "--out", str(tmp_path / "f.png")])
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC


def test_a_run_without_measurements_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(SystemExit, match=r"^error: .*gradient_flow\.csv: no such file; run"):
        main([str(tmp_path), "--out", str(tmp_path / "f.png")])
