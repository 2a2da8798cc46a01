"""Run a wandb sweep file without a wandb server.

python -m rnnlab.tools.sweep sweeps/memory.yaml --count 4 --out logs/sweeps/memory -- trainer.max_epochs=1
python -m rnnlab.tools.sweep sweeps/memory.yaml --only model=lstm,gru --out logs/sweeps/memory/gated

Configurations come from wandb's own sweep engine (`sweeps.next_run`), the command line from the
same wandb helpers a `wandb agent` uses, and each finished run's metrics.json goes back to the
engine, so grid, random and bayes behave as they would on a server. Every run gets its own
directory under --out (Hydra's run dir) holding sweep_run.json; rerunning with the same --out
continues the sweep. `--only KEY=V1,V2` keeps part of a grid axis, so that two processes can
each run half of a grid into folders of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args
from wandb.sdk.lib.runid import generate_id

from rnnlab.utils.entry_point import entry_point
from rnnlab.utils.errors import ConfigError
from rnnlab.utils.extras import importable, install_hint
from rnnlab.utils.overrides import quote_override_value

if importable("sweeps"):  # an optional extra: main() names it when it is missing
    with warnings.catch_warnings():
        # sweeps 0.2 declares pydantic-v1 model options; pydantic 2 warns once per model
        warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")
        from sweeps import RunState, SweepRun, next_run, schema_violations_from_proposed_config

LOGGERS = {"csv": "logger=csv", "wandb": "logger=wandb", "both": "logger=[csv,wandb]"}
RUN_FILE = "sweep_run.json"
console = Console()


def _values(parameters: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (name, value) a parameter can take, nested `parameters:` blocks included."""
    for name, spec in parameters.items():
        if "parameters" in spec:
            yield from _values(spec["parameters"], f"{prefix}{name}.")
        for value in [spec["value"]] if "value" in spec else spec.get("values", []):
            yield prefix + name, value


def load_sweep(path: Path) -> dict[str, Any]:
    """Parse and validate with wandb's schema, plus what a Hydra program further needs."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such sweep file")
    try:
        sweep = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise ConfigError(
            f"{path}: not valid YAML{line}; write `command` as a block list (- ${{env}})"
        ) from None
    if not isinstance(sweep, dict):
        raise ConfigError(f"{path}: a sweep file is a YAML mapping")
    try:
        violations = schema_violations_from_proposed_config(sweep)
    except ValueError as err:
        violations = [str(err)]
    if violations:
        raise ConfigError(f"{path}: invalid sweep: {'; '.join(violations)}")
    if "program" not in sweep:
        raise ConfigError(f"{path}: no `program:` to run")
    for name, value in _values(sweep["parameters"]):
        if value is None:
            raise ConfigError(
                f"{path}: parameter {name} has the value null, which a wandb agent passes as "
                "the string 'None'; write 'null' (quoted) so that Hydra receives null"
            )
    return sweep


def narrow(sweep: dict[str, Any], only: Sequence[str]) -> dict[str, Any]:
    """The sweep with each `KEY=V1,V2` of `only` keeping those of the axis KEY's values."""
    sweep = deepcopy(sweep)
    for item in only:
        key, _, listed = item.partition("=")
        spec = sweep["parameters"].get(key, {})
        if "values" not in spec:
            axes = [k for k, v in sweep["parameters"].items() if "values" in v]
            raise ConfigError(f"--only {item}: {key!r} is not an axis of the sweep; axes: {axes}")
        kept = [yaml.safe_load(v) for v in listed.split(",") if v]
        if not kept or any(v not in spec["values"] for v in kept):
            raise ConfigError(f"--only {item}: keep some of {key}'s values {spec['values']}")
        spec["values"] = [v for v in spec["values"] if v in kept]
    return sweep


def agent_command(sweep: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The command line a `wandb agent` builds for this run config (wandb's helpers, same
    substitution), with this interpreter instead of whatever `python` is on PATH."""
    sweep_vars = create_sweep_command_args({"args": config})
    sweep_vars["interpreter"] = [sys.executable]
    sweep_vars["program"] = [sweep["program"]]
    if platform.system() != "Windows":
        sweep_vars["env"] = ["/usr/bin/env"]
    command = []
    for chunk in create_sweep_command(deepcopy(sweep.get("command"))):
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            command += sweep_vars.get(chunk[2:-1]) or []
        else:
            command.append(chunk)
    return command


def _plain(value: Any) -> Any:
    """numpy scalars from the engine -> Python numbers for JSON."""
    return value.item() if hasattr(value, "item") else value


def load_runs(out: Path) -> list[SweepRun]:
    return [SweepRun(**json.loads(p.read_text())) for p in sorted(out.glob(f"*/{RUN_FILE}"))]


def finished_run(name: str, config: dict[str, Any], run_dir: Path, exitcode: int) -> SweepRun:
    """What the server would know about the run: its state and summary metrics."""
    metrics_file = run_dir / "metrics.json"
    if exitcode != 0 or not metrics_file.is_file():
        return SweepRun(name=name, config=config, state=RunState.failed, exitcode=exitcode)
    metrics = json.loads(metrics_file.read_text())
    summary = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    # train.py keeps a monitored metric's best epoch as `<name>_best`: the extremum that a
    # wandb run's per-epoch history would give the engine
    for key in [k for k in summary if k.endswith("_best")]:
        summary.setdefault(key.removesuffix("_best"), summary[key])
    return SweepRun(
        name=name,
        config=config,
        state=RunState.finished,
        summaryMetrics=summary,
        exitcode=exitcode,
    )


def _check_out_dir(out: Path, sweep: dict[str, Any]) -> None:
    """One --out holds one sweep, so that continuing it feeds the engine the right runs."""
    saved = out / "sweep.yaml"
    if saved.is_file():
        if yaml.safe_load(saved.read_text()) != sweep:
            raise ConfigError(f"{out}: holds runs of a different sweep; pick another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(sweep, sort_keys=False))


def run_sweep(
    sweep_file: Path,
    out: Path,
    count: int | None,
    extra: list[str],
    logger: str = "both",
    only: Sequence[str] = (),
) -> list[SweepRun]:
    """Draw, run and record up to `count` configurations; returns every run of the sweep."""
    sweep = narrow(load_sweep(sweep_file), only)
    if count is None and sweep["method"] != "grid":
        raise ConfigError(f"--count is required for a {sweep['method']} sweep (it never ends)")
    if not Path(sweep["program"]).is_file():
        raise ConfigError(
            f"program {sweep['program']} not found in {Path.cwd()}: run from the project root"
        )
    _check_out_dir(out, sweep)
    runs = load_runs(out)
    metric = sweep.get("metric", {}).get("name")
    done = 0
    while count is None or done < count:
        suggestion = next_run(sweep, runs)
        if suggestion is None:
            console.print(f"[bold]{sweep_file}: every grid point has run[/]")
            break
        config = {k: {"value": _plain(v["value"])} for k, v in suggestion.config.items()}
        name = f"{len(runs):03d}-{generate_id()}"
        run_dir = (out / name).resolve()
        command = [
            *agent_command(sweep, config),
            *extra,
            f"hydra.run.dir={quote_override_value(str(run_dir))}",
            LOGGERS[logger],
        ]
        env = {**os.environ, "WANDB_RUN_ID": name.split("-", 1)[1]}
        if logger != "csv":
            env.setdefault("WANDB_MODE", "offline")
        console.rule(f"run {name}")
        console.print(" ".join(command[1:]), soft_wrap=True, markup=False)
        exitcode = subprocess.run(command, env=env).returncode
        run = finished_run(name, config, run_dir, exitcode)
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {**run.model_dump(by_alias=True, mode="json"), "command": command}
        (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if run.state == RunState.finished and metric and metric not in run.summary_metrics:
            console.print(f"[yellow]warning: {name}: no {metric} in metrics.json[/]")
        runs.append(run)
        done += 1
    _print_runs(runs, metric)
    return runs


def _print_runs(runs: list[SweepRun], metric: str | None) -> None:
    names = sorted({k for r in runs for k in r.config})
    table = Table(title="sweep runs")
    for column in ["run", *names, metric or "metric", "state"]:
        table.add_column(column)
    for run in runs:
        value = (run.summary_metrics or {}).get(metric)
        table.add_row(
            run.name,
            *(str(run.config.get(k, {}).get("value", "")) for k in names),
            f"{value:.4f}" if isinstance(value, float) else "",
            str(run.state),
        )
    console.print(table)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Everything after `--` is Hydra overrides appended to every run."""
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m rnnlab.tools.sweep",
        description="Run a wandb sweep file locally with wandb's sweep engine, no server.",
        epilog="Overrides after -- go to every run, e.g. -- trainer.max_epochs=1",
    )
    parser.add_argument("sweep_file", type=Path)
    parser.add_argument("--count", type=int, help="runs to start (default: the whole grid)")
    parser.add_argument("--out", type=Path, help="sweep folder (default: logs/sweeps/<name>)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="run only these values of a grid axis (repeatable)",
    )
    parser.add_argument(
        "--logger",
        choices=list(LOGGERS),
        default="both",
        help="csv, offline wandb (WANDB_MODE=offline unless set), or both (default)",
    )
    return parser.parse_args(argv), extra


@entry_point
def main(argv: list[str] | None = None) -> list[SweepRun]:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    if not importable("sweeps"):
        raise ConfigError(install_hint("python -m rnnlab.tools.sweep", "sweeps", "sweeps"))
    out = args.out or Path("logs") / "sweeps" / args.sweep_file.stem
    return run_sweep(args.sweep_file, out, args.count, extra, args.logger, args.only)


if __name__ == "__main__":
    main()
