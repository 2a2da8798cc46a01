"""The wrapper every entry point runs in: one-line errors, and cleanup that always happens."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

from rnnlab.utils.errors import ConfigError

log = logging.getLogger(__name__)


def _finish_wandb() -> None:
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _config_error(err: BaseException) -> ConfigError | None:
    """Our error, even when hydra.utils.instantiate wrapped it in an InstantiationException."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__
    return None


# what gloo raises in a rank whose peer process died (its sockets closed by the kernel)
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe")


def _peer_failure(err: BaseException | None) -> BaseException | None:
    """The torch.distributed error in err's chain that says another DDP rank is gone: a
    backend's failure in a collective (DistBackendError, NCCL's included) or gloo's lost
    connection. A start-up failure (a port in use: DistNetworkError) is not one."""
    if "torch.distributed" not in sys.modules:
        return None
    from torch.distributed import DistBackendError

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DistBackendError) or (
            isinstance(err, RuntimeError) and any(text in str(err) for text in _PEER_GONE)
        ):
            return err
        err = err.__cause__ or err.__context__
    return None


def _peer_failure_line(err: BaseException, args: tuple[Any, ...]) -> str:
    """One line: the cause without gloo's source location and advice, and how to resume."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    cause = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0].rstrip(".")
    run_dir = "<run>"
    with contextlib.suppress(Exception):  # not a run's config, or no Hydra run to resolve it in
        run_dir = str(args[0].paths.output_dir)
    return (
        f"error: a DDP rank stopped ({cause}); resume with ckpt_path=last hydra.run.dir={run_dir}"
    )


def entry_point(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ConfigError into `error: ...` + exit 2, and another DDP rank's death into
    `error: ...` + exit 1 instead of a traceback from deep inside a collective (the full
    traceback with HYDRA_FULL_ERROR=1)."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SIGTERMException:
            # Lightning's exception is a SystemExit with status 0; a scheduler must see a failure
            sys.exit(128 + signal.SIGTERM)
        except Exception as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            config_error = _config_error(err)
            if config_error is not None:
                print(f"error: {config_error}", file=sys.stderr)
                sys.exit(2)
            peer_failure = _peer_failure(err)
            if peer_failure is None:
                raise
            print(_peer_failure_line(peer_failure, args), file=sys.stderr)
            sys.exit(1)
        finally:
            _finish_wandb()

    return wrapped
