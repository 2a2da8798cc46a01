"""The wrapper every entry point runs in: one-line errors, and cleanup that always happens."""

from __future__ import annotations

import functools
import logging
import os
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


def task_wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ConfigError into `error: ...` + exit 2 (full traceback with HYDRA_FULL_ERROR=1)."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SIGTERMException:
            # Lightning's exception is a SystemExit with status 0; a scheduler must see a failure
            sys.exit(128 + signal.SIGTERM)
        except Exception as err:
            config_error = _config_error(err)
            if config_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {config_error}", file=sys.stderr)
            sys.exit(2)
        finally:
            _finish_wandb()

    return wrapped
