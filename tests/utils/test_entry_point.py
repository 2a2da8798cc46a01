"""entry_point on another DDP rank's death (the end-to-end kill: tests/run/test_dead_rank.py)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from torch.distributed import DistBackendError, DistNetworkError

from rnnlab.utils.entry_point import entry_point

GLOO_PEER_GONE = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed "
    "by peer [127.0.0.1]:35489. This is typically caused by a remote worker crashing. Check the "
    "logs of the remote worker before reporting an error. GLHF!"
)
CFG = OmegaConf.create({"paths": {"output_dir": "/runs/r1"}})


def _raising(err: BaseException):
    @entry_point
    def task(cfg) -> None:
        raise err

    return task


def test_a_lost_gloo_peer_is_one_line_naming_the_run_to_resume(capsys, monkeypatch) -> None:
    """Catches the traceback from inside the collective reaching the user, gloo's source path
    and advice in the line, and a resume command without the run's directory."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    try:
        raise RuntimeError(GLOO_PEER_GONE)
    except RuntimeError as cause:  # as Lightning raises it: the gloo error as the context
        wrapped = ValueError("during the optimizer step")
        wrapped.__context__ = cause
    with pytest.raises(SystemExit) as stopped:
        _raising(wrapped)(CFG)
    assert stopped.value.code == 1
    assert capsys.readouterr().err == (
        "error: a DDP rank stopped (Connection closed by peer [127.0.0.1]:35489); resume with "
        "ckpt_path=last hydra.run.dir=/runs/r1\n"
    )


def test_a_backend_error_is_a_peer_failure_too(capsys, monkeypatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit):
        _raising(DistBackendError("NCCL communicator was aborted on rank 1"))(CFG)
    assert capsys.readouterr().err.startswith(
        "error: a DDP rank stopped (NCCL communicator was aborted on rank 1); resume with"
    )


@pytest.mark.parametrize(
    "err",
    [RuntimeError("shapes do not match"), DistNetworkError("port 29500 is in use")],
    ids=["other_runtime_error", "start_up_failure"],
)
def test_other_errors_keep_their_traceback(err, monkeypatch) -> None:
    """Catches the one-line message swallowing bugs, or a start-up failure (no rank had died)
    told to resume."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(type(err)):
        _raising(err)(CFG)


def test_hydra_full_error_keeps_the_traceback_of_a_peer_failure(monkeypatch) -> None:
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(RuntimeError, match="Connection closed by peer"):
        _raising(RuntimeError(GLOO_PEER_GONE))(CFG)
