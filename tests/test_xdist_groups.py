"""The suite's own scheduling: tests that start processes of their own queue on one worker."""

from __future__ import annotations

import pytest


@pytest.mark.multiprocess
def test_a_test_that_starts_processes_runs_in_the_shared_worker_group(
    request: pytest.FixtureRequest,
) -> None:
    """Catches the group marker added after xdist has read the markers into the node ids: the
    process-starting tests would then spread over both workers, share the cores, and one
    worker's stop of the local SLURM cluster would end the other worker's jobs."""
    if not getattr(request.config.option, "loadgroup", False):  # set in xdist's workers
        pytest.skip("runs under pytest-xdist --dist loadgroup (the suite's addopts)")
    assert request.node.nodeid.endswith("@processes")
