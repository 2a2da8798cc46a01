"""The cluster recipes of docs/devices.md on a real SLURM: the local two-node cluster that
scripts/local_slurm.sh starts (the `slurm` tier; skipped where SLURM cannot be started)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT
from tests.run.pause import record_steps
from tests.run.test_resume import STEPS_PER_EPOCH, check_resumed, run_args, uninterrupted_run
from tests.run.two_ranks import overrides, read_metrics, reference_metrics, without_wall_clock

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SBATCH = ROOT / "scripts" / "train.sbatch"
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
PREEMPT_AT = 34  # epoch 1, off the periodic saves (every 10 steps, 27 steps an epoch)


def job_state(job: str, env: dict[str, str]) -> dict[str, str]:
    """`scontrol show job` as a dict: JobState, Restarts, NodeList, ..."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True, timeout=30
    )
    return dict(f.split("=", 1) for f in shown.stdout.split() if "=" in f)


def job_log(path: Path) -> str:
    return path.read_text()[-4000:] if path.exists() else f"{path}: not written"


class Jobs:
    """Submits `scripts/train.sbatch` from the repo root, runs it in `cwd` (sbatch --chdir),
    waits for jobs to end, and cancels at the end whatever of them is still queued."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd, self.ids = env, cwd, []

    def submit(self, sbatch_options: list[str], train_overrides: list[str]) -> tuple[str, Path]:
        out = self.cwd / "job-%j.out"
        done = subprocess.run(
            [
                *("sbatch", "--parsable", f"--chdir={self.cwd}", f"--output={out}"),
                *sbatch_options,
                str(SBATCH),
                *train_overrides,
            ],
            cwd=ROOT,
            env={**self.env, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        job = done.stdout.strip().split(";")[0]
        self.ids.append(job)
        return job, self.cwd / f"job-{job}.out"

    def wait(self, job: str, log: Path, timeout: float = 300) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (state := job_state(job, self.env)).get("JobState") not in DONE:
            assert time.monotonic() < deadline, f"job {job} {state.get('JobState')}\n{job_log(log)}"
            time.sleep(0.5)
        return state

    def cancel(self) -> None:
        if self.ids:
            subprocess.run(["scancel", *self.ids], env=self.env, capture_output=True, timeout=60)


@pytest.fixture
def jobs(slurm_env, tmp_path) -> Iterator[Jobs]:
    submitted = Jobs(slurm_env, tmp_path)
    yield submitted
    submitted.cancel()


@pytest.mark.multiprocess
def test_ddp_on_two_slurm_nodes_equals_two_processes_on_one_node(
    jobs, hub_dir, cache_dir, tmp_path, tmp_path_factory
) -> None:
    """`sbatch -N 2 --ntasks-per-node=1 scripts/train.sbatch ... trainer.num_nodes=2`. Catches
    Lightning not reading the SLURM environment (each task training alone as rank 0 of 1: other
    metrics, two writers of metrics.json), the ranks not meeting (MASTER_ADDR from the node
    list), and a rank split or seeding that differs from a one-node DDP start."""
    reference = reference_metrics(hub_dir, cache_dir, tmp_path_factory)
    run_dir = tmp_path / "run"
    two_nodes = ["trainer.devices=1", "trainer.num_nodes=2", "trainer.strategy=ddp"]
    job, log = jobs.submit(
        ["--nodes=2", "--ntasks-per-node=1", "--job-name=rnnlab-two-nodes"],
        overrides(hub_dir, cache_dir, run_dir, *two_nodes),
    )
    state = jobs.wait(job, log)
    assert state["JobState"] == "COMPLETED", job_log(log)
    assert state["NodeList"] == "n[1-2]"
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log.read_text()
    assert list(tmp_path.rglob("metrics.json")) == [run_dir / "metrics.json"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert without_wall_clock(read_metrics(run_dir)) == without_wall_clock(reference)


def test_a_job_preempted_with_sigusr1_is_requeued_and_ends_like_an_uninterrupted_run(
    jobs, hub_dir, cache_dir, tmp_path, tmp_path_factory
) -> None:
    """`scancel --signal=USR1` on a running scripts/train.sbatch job, paused at step 34. Catches
    the requeue not happening (Lightning's SLURM handler not installed: the job ends or runs
    on), a run directory that changes with the requeue (the default one is per job id, so the
    requeued job must find its hpc checkpoint there), a requeued job that starts over instead of
    resuming (it must start at step 34, mid-epoch), one that resumes elsewhere in the data or
    with other dropout masks (other final weights), and a job log the requeue truncates."""
    uninterrupted = uninterrupted_run(hub_dir, cache_dir, tmp_path_factory)
    marker, steps = tmp_path / "paused", tmp_path / "steps.json"
    pause = [
        "+callbacks.pause._target_=tests.run.pause.PauseAtStep",
        f"+callbacks.pause.step={PREEMPT_AT}",
        f"+callbacks.pause.marker={marker}",
    ]
    args = run_args(hub_dir, cache_dir, tmp_path / "unused", *pause, *record_steps(steps))[2:]
    job, log = jobs.submit(
        ["--job-name=rnnlab-preempt"], [a for a in args if not a.startswith("hydra.run.dir=")]
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        state = job_state(job, jobs.env).get("JobState")
        assert state not in DONE and time.monotonic() < deadline, f"{state}\n{job_log(log)}"
        time.sleep(0.2)
    assert (
        marker.read_text() == f"{PREEMPT_AT // STEPS_PER_EPOCH} {PREEMPT_AT % STEPS_PER_EPOCH - 1}"
    )

    subprocess.run(["scancel", "--signal=USR1", job], env=jobs.env, check=True, timeout=60)
    state = jobs.wait(job, log)
    assert (state["JobState"], state["Restarts"]) == ("COMPLETED", "1"), job_log(log)
    text = log.read_text()
    assert f"job {job} (restart 0)" in text and f"job {job} (restart 1)" in text
    run_dir = tmp_path / "logs" / "train" / "slurm" / job
    hpc = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=True)
    assert hpc["global_step"] == PREEMPT_AT
    check_resumed(steps, read_metrics(run_dir), uninterrupted, PREEMPT_AT)


def submitit_sweep(
    env: dict[str, str], sweep_dir: Path, launcher: list[str], train_overrides: list[str]
) -> subprocess.CompletedProcess:
    """`python train.py -m hydra/launcher=slurm ...` on the local nodes: no GPU, 1 CPU, 1 GB."""
    args = [
        *("-m", "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0"),
        *(
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10",
        ),
        *launcher,
        *train_overrides,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=sweep_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def job_overrides(job_dir: Path) -> list[str]:
    return yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())


def test_the_submitit_launcher_runs_each_sweep_job_as_a_slurm_job(
    slurm_env, hub_dir, cache_dir, tmp_path
) -> None:
    """`python train.py -m hydra/launcher=slurm ... model=rnn,gru`. Catches the launcher preset
    not composing or asking for what a CPU node cannot give (the jobs would wait forever: the
    sweep has a timeout), jobs that do not run (no metrics.json in the sweep's job folders) and
    a sweep that runs here instead of on SLURM (no submitit job logs)."""
    sweep_dir = tmp_path / "sweep"
    submitit_sweep(slurm_env, sweep_dir, [], overrides(hub_dir, cache_dir, None, "model=rnn,gru"))
    models = {}
    for job_dir in (sweep_dir / "0", sweep_dir / "1"):
        assert "test/acc" in read_metrics(job_dir)
        models[job_dir.name] = [o for o in job_overrides(job_dir) if o.startswith("model=")]
    assert models == {"0": ["model=rnn"], "1": ["model=gru"]}
    submitit_logs = sorted((sweep_dir / ".submitit").glob("*_[01]/*_log.out"))
    assert len(submitit_logs) == 2, sorted((sweep_dir / ".submitit").rglob("*"))


@pytest.mark.multiprocess
def test_ddp_inside_a_submitit_job_with_tasks_per_node_equal_to_devices(
    slurm_env, hub_dir, cache_dir, tmp_path, tmp_path_factory
) -> None:
    """`hydra.launcher.tasks_per_node=2 trainer.devices=2 trainer.strategy=ddp`: SLURM starts
    both ranks, so DDP works inside a sweep job. Catches the two tasks not forming one DDP run
    (two independent trainings in one folder) and a result other than a one-node DDP start's."""
    reference = reference_metrics(hub_dir, cache_dir, tmp_path_factory)
    sweep_dir = tmp_path / "sweep"
    submitit_sweep(
        slurm_env,
        sweep_dir,
        ["hydra.launcher.tasks_per_node=2"],
        overrides(hub_dir, cache_dir, None, "trainer.devices=2", "trainer.strategy=ddp"),
    )
    assert list(sweep_dir.rglob("metrics.json")) == [sweep_dir / "0" / "metrics.json"]
    assert without_wall_clock(read_metrics(sweep_dir / "0")) == without_wall_clock(reference)
