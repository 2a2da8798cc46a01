"""The long-range lab's report: memory-task runs by cell and length, with chance and the solved
threshold each run states, and the gradient flow of every cell at one length."""

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from rnnlab.tools.lab import collect_lab, task_name
from rnnlab.tools.report import collect, main
from rnnlab.tools.sweep import load_sweep
from tests.conftest import CONF, PNG_MAGIC, ROOT
from tests.tools.test_report import make_run

CELLS = {  # a cell's label in the report, and the model settings that make it
    "rnn": {
        "encoder": {"_target_": "rnnlab.models.components.RNNEncoder"},
        "init": {"_target_": "rnnlab.models.components.init.DefaultInit"},
    },
    "rnn relu, identity init": {
        "encoder": {"_target_": "rnnlab.models.components.RNNEncoder", "nonlinearity": "relu"},
        "init": {"_target_": "rnnlab.models.components.init.IdentityInit"},
    },
    "lstm": {
        "encoder": {"_target_": "rnnlab.models.components.LSTMEncoder"},
        "init": {"_target_": "rnnlab.models.components.init.DefaultInit"},
    },
}
ADDING = {
    "data": {"_target_": "rnnlab.data.AddingDataModule"},
    "task": {"_target_": "rnnlab.models.components.Regression", "solved_below": 0.01},
    "metric": "mse",
    "mode": "min",
    "chance": 1 / 6,
    "solved_at": 0.01,
}
SELECTIVE_COPY = {
    "data": {"_target_": "rnnlab.data.SelectiveCopyDataModule"},
    "task": {"_target_": "rnnlab.models.components.task.Recall", "solved_above": 0.95},
    "metric": "recall_acc",
    "mode": "max",
    "chance": 1 / 16,
    "solved_at": 0.95,
}


def make_memory_run(run_dir: Path, task: dict, cell: str, span: int, value: float) -> None:
    """A memory-task run as train.py leaves it, with the gradient-flow callback's CSV."""
    (run_dir / ".hydra").mkdir(parents=True)
    model = {**CELLS[cell], "task": task["task"]}
    config = {"model": model, "data": task["data"]}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    solved = value < task["solved_at"] if task["mode"] == "min" else value > task["solved_at"]
    metrics = {
        f"test/{task['metric']}": value,
        "test/solved": float(solved),
        "train_time_s": 60.0,
        "span": span,
        "chance": task["chance"],
        "solved_at": task["solved_at"],
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    flow = run_dir / "gradient_flow"
    flow.mkdir()
    rows = ["global_step,distance_from_end,grad_norm"] + [
        f"{step},{d},{0.5**d if cell == 'rnn' else 0.1}" for step in (0, 100) for d in range(span)
    ]
    (flow / "gradient_flow.csv").write_text("\n".join(rows) + "\n")


def test_task_names_come_from_the_data_module_class() -> None:
    assert task_name(ADDING["data"]) == "adding"
    assert task_name(SELECTIVE_COPY["data"]) == "selective_copy"


def test_adding_runs_give_a_solved_table_a_figure_and_the_gradient_flow(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    make_run(sweep / "text", "gru", 64, 64, 0.8)  # a text run: the text table, not the lab
    for i, (cell, span, mse) in enumerate(
        [("lstm", 50, 0.002), ("rnn", 50, 0.16), ("lstm", 100, 0.15), ("rnn", 100, 0.17)]
        + [("rnn relu, identity init", 50, 0.005)]
    ):
        make_memory_run(sweep / f"adding-{i}", ADDING, cell, span, mse)
    out = tmp_path / "report"
    main([str(sweep), "--out", str(out)])
    assert len(collect([sweep])) == 1 and len(collect_lab([sweep])) == 5
    with (out / "adding_runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["cell"], r["T"], r["solved"]) for r in rows] == [
        ("lstm", "50", "1.0"),
        ("lstm", "100", "0.0"),
        ("rnn", "50", "0.0"),
        ("rnn", "100", "0.0"),
        ("rnn relu, identity init", "50", "1.0"),
    ]
    table = (out / "adding_solved.md").read_text()
    assert "chance 0.167" in table and "solved, below 0.01" in table
    assert "| cell | T=50 | T=100 |" in table
    assert "| lstm | 0.002 ✓ | 0.15 |" in table
    assert "| rnn relu, identity init | 0.005 ✓ |  |" in table
    # every cell ran T=50 only: that is where the gradient-flow figure compares them
    for png in ("adding_mse_vs_T.png", "adding_gradient_flow_T50.png", "acc_vs_max_len.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


def test_each_memory_task_gets_its_own_table_with_its_own_chance_and_threshold(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    make_memory_run(sweep / "a", ADDING, "lstm", 50, 0.002)
    for i, (cell, span, acc) in enumerate(
        [("lstm", 64, 0.99), ("rnn", 64, 0.3), ("lstm", 256, 0.5)]
    ):
        make_memory_run(sweep / f"s{i}", SELECTIVE_COPY, cell, span, acc)
    out = tmp_path / "report"
    main([str(sweep), "--out", str(out)])
    table = (out / "selective_copy_solved.md").read_text()
    assert "Test recall_acc of the selective_copy task" in table
    assert "chance 0.0625" in table and "solved, above 0.95" in table
    assert "| lstm | 0.990 ✓ | 0.500 |" in table and "| rnn | 0.300 |  |" in table
    assert "| lstm | 0.002 ✓ |" in (out / "adding_solved.md").read_text()
    assert (out / "selective_copy_recall_acc_vs_T.png").read_bytes()[:8] == PNG_MAGIC


LAB_SWEEPS = sorted(path.stem for path in (ROOT / "sweeps").glob("lab_*.yaml"))


def _lab_list(name: str) -> list[str]:
    """A bash array that benchmarks/lab.sh sets (`name=(a b c)`)."""
    script = (ROOT / "benchmarks" / "lab.sh").read_text()
    return re.findall(rf"^{name}=\((.+)\)$", script, re.M)[0].split()


def test_the_lab_script_runs_every_lab_sweep_by_default() -> None:
    assert sorted(_lab_list("default_sweeps")) == LAB_SWEEPS


@pytest.mark.parametrize("name", LAB_SWEEPS)
def test_the_lab_script_runs_each_cell_of_its_sweeps_once(name) -> None:
    cells = load_sweep(ROOT / "sweeps" / f"{name}.yaml")["parameters"]["model"]["values"]
    assert sorted(_lab_list("cells")) == sorted(cells)
    assert all((CONF / "model" / f"{cell}.yaml").is_file() for cell in cells)
