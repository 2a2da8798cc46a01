"""torchrun on two "nodes" of this machine: the recipe of docs/devices.md for several machines."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.run.two_ranks import (
    env,
    overrides,
    read_metrics,
    reference_metrics,
    without_wall_clock,
)

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_node(node_rank: int, port: int, args: list[str], log: Path) -> subprocess.Popen:
    """`torchrun --nnodes=2 --nproc-per-node=1 --node-rank=<n> ...` (static rendezvous) as the
    launch on one node; torchrun is `python -m torch.distributed.run`, run with this Python."""
    with log.open("w") as out:  # a file, not a pipe that could fill up and block the run
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "torch.distributed.run"),
                *("--nnodes=2", "--nproc-per-node=1", f"--node-rank={node_rank}"),
                *("--master-addr=127.0.0.1", f"--master-port={port}"),
                str(ROOT / "train.py"),
                *args,
            ],
            cwd=log.parent,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a node that hangs is killed with its worker
        )


def test_torchrun_on_two_nodes_equals_two_processes_on_one(
    hub_dir, cache_dir, tmp_path, tmp_path_factory
) -> None:
    """Catches the torchrun environment not being read (each node training alone as rank 0 of
    1: two metrics.json writers, other metrics), trainer.num_nodes not reaching the data
    module's rank split, and ranks seeded or sharded differently from a one-node start."""
    reference = reference_metrics(hub_dir, cache_dir, tmp_path_factory)
    run_dir = tmp_path / "run"
    args = overrides(
        hub_dir,
        cache_dir,
        run_dir,
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "trainer.strategy=ddp",
    )
    port = free_port()
    logs = [tmp_path / f"node{n}.log" for n in (0, 1)]
    nodes = [torchrun_node(n, port, args, log) for n, log in enumerate(logs)]
    try:
        codes = [node.wait(timeout=300) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    tails = "\n".join(log.read_text()[-2000:] for log in logs)
    assert codes == [0, 0], tails
    assert "MEMBER: 2/2" in logs[1].read_text(), tails  # node 1 ran rank 1 of 2
    assert list(tmp_path.rglob("metrics.json")) == [run_dir / "metrics.json"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert without_wall_clock(read_metrics(run_dir)) == without_wall_clock(reference)
