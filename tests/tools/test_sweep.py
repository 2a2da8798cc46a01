import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from rnnlab.tools import sweep as runner
from rnnlab.tools.runs import cell_name
from rnnlab.tools.sweep import agent_command, load_runs, load_sweep, main, next_run, run_sweep
from tests.conftest import CONF, ROOT, TINY

SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))
COMMAND = ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
# a stand-in for train.py: writes the metrics.json train.py would, with val/acc_best = 1 - |lr - 3e-3|
FAKE_PROGRAM = """
import json, pathlib, sys
args = dict(a.split("=", 1) for a in sys.argv[1:])
run_dir = pathlib.Path(args["hydra.run.dir"].strip("'"))
run_dir.mkdir(parents=True)
lr = float(args.get("model.optimizer.lr", 0))
(run_dir / "metrics.json").write_text(json.dumps({"val/acc_best": 1 - abs(lr - 3e-3)}))
"""


def _sweep_file(folder: Path, parameters: dict, method: str = "grid", **extra) -> Path:
    body = {
        "program": "train.py",
        "method": method,
        "metric": {"name": "val/acc", "goal": "maximize"},
        "parameters": parameters,
        "command": COMMAND,
        **extra,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _expand(sweep: dict) -> list[dict]:
    runs = []
    while (run := next_run(sweep, runs)) is not None:
        runs.append(run)
    return [{k: v["value"] for k, v in r.config.items()} for r in runs]


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_every_sweep_file_passes_the_engine_schema_and_its_keys_compose_in_hydra(path) -> None:
    sweep = load_sweep(path)
    assert sweep["program"] == "train.py"
    assert sweep["command"][:3] == COMMAND[:3] and "${args_no_hyphens}" in sweep["command"]
    args = agent_command(sweep, next_run(sweep, []).config)[3:]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=args, return_hydra_config=True)
    # the sweep optimises what the run's model monitors (its task's objective)
    task = get_class(cfg.model.task._target_)
    assert sweep["metric"]["name"] == task.objective[0]
    assert sweep["metric"]["goal"] == {"max": "maximize", "min": "minimize"}[task.objective[1]]
    for arg in args:
        key, value = arg.split("=", 1)
        if key in cfg.hydra.runtime.choices:  # a preset: model=lstm, experiment=adding
            assert cfg.hydra.runtime.choices[key] == value
        elif value == "null":
            assert OmegaConf.select(cfg, key, throw_on_missing=True) is None
        else:
            assert str(OmegaConf.select(cfg, key, throw_on_missing=True)) == value


def test_memory_grid_expands_to_every_cell_and_length_once() -> None:
    configs = _expand(load_sweep(ROOT / "sweeps" / "memory.yaml"))
    pairs = {(c["model"], c["data.max_len"]) for c in configs}
    assert len(configs) == len(pairs) == 3 * 6
    assert {m for m, _ in pairs} == {"rnn", "lstm", "gru"}
    assert {n for _, n in pairs} == {32, 64, 128, 256, 512, 1024}
    assert all(
        c["model.readout._target_"].endswith(".LastReadout") and c["data.truncation"] == "head"
        for c in configs
    )


def test_agent_command_is_the_wandb_agent_command_line() -> None:
    sweep = load_sweep(ROOT / "sweeps" / "memory_quick.yaml")
    config = {"data.max_len": {"value": 64}, "model": {"value": "rnn"}}
    assert agent_command(sweep, config) == [
        "/usr/bin/env",
        sys.executable,
        "train.py",
        "logger=wandb",
        "data.max_len=64",
        "model=rnn",
    ]


def test_runner_hands_hydra_each_swept_value_with_its_type(
    hub_dir, cache_dir, tmp_path, monkeypatch
) -> None:
    swept = {
        "model": {"value": "gru"},
        "model.hidden_size": {"value": 24},
        "model.optimizer.lr": {"value": 0.01},
        "model.scheduler": {"value": "null"},
        "trainer.deterministic": {"value": True},
        "data.truncation": {"value": "head"},
    }
    sweep_file = _sweep_file(tmp_path, swept)
    extra = [o for o in TINY if not o.startswith("model.hidden_size")]
    extra += [f"data.path={hub_dir}", f"paths.cache_dir={cache_dir}", "trainer.max_epochs=1"]
    extra += ["trainer.limit_train_batches=4", "trainer.limit_val_batches=2"]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    [run] = run_sweep(sweep_file, tmp_path / "out", None, extra, logger="csv")

    assert run.state == "finished"
    assert run.summary_metrics["val/acc"] == run.summary_metrics["val/acc_best"]
    run_dir = tmp_path / "out" / run.name
    cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert cell_name(cfg["model"]["encoder"]) == "gru"
    assert cfg["model"]["hidden_size"] == 24 and type(cfg["model"]["hidden_size"]) is int
    assert cfg["model"]["optimizer"]["lr"] == 0.01
    assert cfg["model"]["scheduler"] is None
    assert cfg["trainer"]["deterministic"] is True
    assert cfg["data"]["truncation"] == "head"
    assert (run_dir / "metrics.json").is_file() and (
        run_dir / "csv" / "version_0" / "metrics.csv"
    ).is_file()
    assert load_runs(tmp_path / "out")[0].config == swept


@pytest.fixture
def fake_project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "train.py").write_text(FAKE_PROGRAM)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bayes_engine_sees_every_finished_run_and_its_metric(fake_project, monkeypatch) -> None:
    seen: list[list[float]] = []

    def spy(sweep, runs):
        seen.append([r.summary_metrics["val/acc"] for r in runs if r.state == "finished"])
        return next_run(sweep, runs)

    monkeypatch.setattr(runner, "next_run", spy)
    params = {
        "model.optimizer.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "model.dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    }
    sweep_file = _sweep_file(fake_project, params, method="bayes")
    runs = run_sweep(sweep_file, fake_project / "out", 3, [], logger="csv")
    assert [len(s) for s in seen] == [0, 1, 2]
    lrs = [r.config["model.optimizer.lr"]["value"] for r in runs]
    assert seen[-1] == pytest.approx([1 - abs(lr - 3e-3) for lr in lrs[:2]])


def test_rerunning_a_grid_into_the_same_folder_runs_only_what_is_left(fake_project) -> None:
    sweep_file = _sweep_file(fake_project, {"a": {"values": [1, 2]}, "b": {"values": ["x", "y"]}})
    run_sweep(sweep_file, fake_project / "out", 3, [], logger="csv")
    runs = run_sweep(sweep_file, fake_project / "out", None, [], logger="csv")
    assert len(runs) == 4
    assert len({(r.config["a"]["value"], r.config["b"]["value"]) for r in runs}) == 4
    assert all(r.state == "finished" for r in runs)


def test_only_runs_the_kept_values_of_an_axis_and_two_parts_make_the_grid(fake_project) -> None:
    sweep_file = _sweep_file(
        fake_project, {"a": {"values": [1, 2, 3]}, "b": {"values": ["x", "y"]}}
    )
    first = run_sweep(sweep_file, fake_project / "p1", None, [], logger="csv", only=["a=1,3"])
    second = run_sweep(sweep_file, fake_project / "p2", None, [], logger="csv", only=["a=2"])
    points = {(r.config["a"]["value"], r.config["b"]["value"]) for r in first + second}
    assert len(first) == 4 and len(second) == 2
    assert points == {(a, b) for a in (1, 2, 3) for b in "xy"}


@pytest.mark.parametrize("only", ["a=4", "c=1", "a="])
def test_only_outside_the_grid_is_a_one_line_error(only, fake_project, capsys) -> None:
    sweep_file = _sweep_file(fake_project, {"a": {"values": [1, 2]}, "c": {"value": 1}})
    with pytest.raises(SystemExit):
        main([str(sweep_file), "--only", only, "--out", str(fake_project / "out")])
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --only {only}: ") and "\n" not in err


def test_a_failing_run_is_recorded_as_failed(fake_project) -> None:
    (fake_project / "train.py").write_text("raise SystemExit(3)")
    [run] = run_sweep(_sweep_file(fake_project, {"a": {"value": 1}}), fake_project / "o", 1, [])
    assert run.state == "failed" and run.exitcode == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such sweep file"),
        (
            "program: train.py\nmethod: grid\nparameters: {a: {values: [1]}}\n"
            "command: [${env}, ${program}]\n",
            "not valid YAML",
        ),
        ("program: train.py\nmethod: sideways\nparameters: {a: {values: [1]}}\n", "invalid sweep"),
        ("program: train.py\nmethod: grid\nparameters: {a: {values: [1, null]}}\n", "'null'"),
        ("program: nowhere.py\nmethod: grid\nparameters: {a: {value: 1}}\n", "not found"),
        ("program: train.py\nmethod: random\nparameters: {a: {values: [1]}}\n", "--count"),
    ],
)
def test_bad_sweep_input_is_a_one_line_error(content, message, fake_project, capsys) -> None:
    path = fake_project / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--out", str(fake_project / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_another_sweep_cannot_continue_in_the_same_folder(fake_project, capsys) -> None:
    run_sweep(_sweep_file(fake_project, {"a": {"value": 1}}), fake_project / "out", 1, [])
    other = _sweep_file(fake_project, {"a": {"value": 2}})
    with pytest.raises(SystemExit):
        main([str(other), "--out", str(fake_project / "out")])
    assert "different sweep" in capsys.readouterr().err


def test_hydra_multirun_gives_each_job_its_run_dir_metrics_and_offline_wandb_run(
    hub_dir, cache_dir, tmp_path
) -> None:
    overrides = [o for o in TINY if not o.startswith("logger=")]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            "model=rnn,gru",
            "logger=[csv,wandb]",
            f"data.path={hub_dir}",
            f"paths.cache_dir={cache_dir}",
            f"hydra.sweep.dir={tmp_path}",
            *overrides,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
        ],
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wandb_runs = set()
    for job, cell in (("0", "rnn"), ("1", "gru")):
        job_dir = tmp_path / job
        assert "test/acc" in json.loads((job_dir / "metrics.json").read_text())
        assert (
            cell_name(
                yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())["model"]["encoder"]
            )
            == cell
        )
        [wandb_run] = (job_dir / "wandb").glob("offline-run-*/run-*.wandb")
        wandb_runs.add(wandb_run.name)
    assert len(wandb_runs) == 2


def _compose_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm"])
def test_slurm_launcher_presets_compose(launcher) -> None:
    cfg = _compose_hydra([f"hydra/launcher={launcher}", "hydra.launcher.partition=gpu"])
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert cfg.hydra.launcher.partition == "gpu"


def test_without_the_sweeps_extra_a_sweep_fails_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(runner, "importable", lambda module: module != "sweeps")
    with pytest.raises(SystemExit):
        main([str(_sweep_file(tmp_path, {"model.optimizer.lr": {"values": [1e-3]}}))])
    assert capsys.readouterr().err == (
        'error: python -m rnnlab.tools.sweep needs sweeps: pip install -e ".[sweeps]"\n'
    )
