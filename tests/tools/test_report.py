import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnlab.tools.report import collect, main, write_recipe_table
from rnnlab.tools.runs import read_wandb_run
from tests.conftest import PNG_MAGIC


def model_config(cell: str, hidden: int) -> dict:
    """The parts of a composed classifier config that the report reads."""
    encoder = {"_target_": f"rnnlab.models.components.{CLASS_NAMES[cell]}Encoder"}
    readout = {"_target_": "rnnlab.models.components.MaxReadout"}
    return {"encoder": encoder, "readout": readout, "hidden_size": hidden}


CLASS_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def make_run(run_dir: Path, cell: str, max_len: int, hidden: int, acc: float) -> None:
    """A run directory as train.py leaves it: metrics.json beside Hydra's .hydra/config.yaml."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"model": model_config(cell, hidden), "data": {"max_len": max_len}}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    metrics = {
        "test/acc": acc,
        "test/f1": acc - 0.01,
        "train_time_s": 12.5,
        "trainable_params": 1000 * hidden,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    for i, (cell, max_len, acc) in enumerate(
        [("gru", 64, 0.80), ("rnn", 256, 0.60), ("rnn", 64, 0.70), ("gru", 256, 0.85)]
    ):
        make_run(tmp_path / "sweep" / f"{i:03d}-run", cell, max_len, 64, acc)
    eval_run = tmp_path / "sweep" / "eval"  # eval.py also writes metrics.json: not a training run
    (eval_run / ".hydra").mkdir(parents=True)
    (eval_run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"data": {"max_len": 64}}))
    (eval_run / "metrics.json").write_text(json.dumps({"test/acc": 0.5}))
    return tmp_path / "sweep"


def test_report_writes_sorted_table_and_both_plots(sweep_dir, tmp_path) -> None:
    out = tmp_path / "report"
    main([str(sweep_dir), "--out", str(out)])
    with (out / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["cell"], r["max_len"]) for r in rows] == [
        ("gru", "64"),
        ("gru", "256"),
        ("rnn", "64"),
        ("rnn", "256"),
    ]
    assert rows[2]["test_acc"] == "0.7" and rows[2]["trainable_params"] == "64000"
    markdown = (out / "runs.md").read_text().splitlines()
    assert markdown[0].startswith("| cell | hidden size | max_len | test acc | F1 | train time")
    assert "| rnn | 64 | 64 | 0.7000 | 0.6900 | 12.5 | 64000 |" in markdown[4]
    for png in ("acc_vs_max_len.png", "acc_vs_hidden_size.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


def test_seeds_of_one_command_share_a_row_with_mean_and_std(sweep_dir, tmp_path) -> None:
    for seed, acc in ((42, 0.80), (43, 0.82), (44, 0.84)):
        run = tmp_path / "repro" / f"simple-{seed}"
        make_run(run, "rnn", 200, 128, acc)
        config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({**config, "seed": seed}))
        overrides = ["experiment=simplernn_baseline", f"seed={seed}", "callbacks.progress_bar=null"]
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (sweep_dir / "eval" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["ckpt_path=x"]))
    assert write_recipe_table([tmp_path / "repro", sweep_dir], tmp_path)
    rows = (tmp_path / "commands.md").read_text().splitlines()[2:]
    # the sweep's runs have no record of their overrides, and the eval run trained nothing
    assert rows == [
        "| `python train.py experiment=simplernn_baseline` | 42, 43, 44 | 82.00 ± 2.00% | 12 |"
    ]


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory) -> Path:
    """A finished offline wandb run (no metrics.json), as a WandbLogger-only run leaves it."""
    folder = tmp_path_factory.mktemp("wandb_only")
    script = (
        "import wandb\n"
        f"run = wandb.init(project='rnnlab', dir={str(folder)!r},"
        f" config={{'model': {model_config('lstm', 32)!r}, 'data': {{'max_len': 128}}}})\n"
        "run.log({'test/acc': 0.75, 'test/f1': 0.7})\n"
        "run.finish()\n"
    )
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    return folder / "wandb"


def test_report_reads_offline_wandb_runs_that_have_no_metrics_json(wandb_dir) -> None:
    [wandb_file] = wandb_dir.glob("offline-run-*/run-*.wandb")
    config, summary, finished = read_wandb_run(wandb_file)
    assert finished and config["model"] == model_config("lstm", 32)
    assert summary["test/acc"] == 0.75
    [row] = collect([wandb_dir.parent])
    assert (row["cell"], row["hidden_size"], row["max_len"], row["test_acc"]) == (
        "lstm",
        32,
        128,
        0.75,
    )


def test_wandb_run_inside_a_run_directory_is_counted_once(sweep_dir, wandb_dir) -> None:
    shutil.copytree(wandb_dir, sweep_dir / "000-run" / "wandb", symlinks=True)
    assert len(collect([sweep_dir])) == 4


def test_report_on_a_folder_without_runs_is_a_one_line_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--out", str(tmp_path / "report")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no finished runs under") and "\n" not in err
