"""Hydra callbacks: checks that must run before Hydra creates the run directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def unwritable_reason(folder: Path) -> str | None:
    """Why `folder` cannot be created and written, judged at its nearest existing ancestor."""
    ancestor = folder
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            return f"{ancestor} does not exist"
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


class CheckOutputDir(Callback):
    """Hydra's own error for an unwritable run directory is a traceback from deep inside it."""

    def _check(self, config: DictConfig, key: str) -> None:
        HydraConfig.instance().set_config(config)  # so ${hydra:...} in the path resolves
        folder = Path(config.hydra.run.dir if key == "hydra.run.dir" else config.hydra.sweep.dir)
        reason = unwritable_reason(folder.absolute())
        if reason:
            print(
                f"error: {key}={str(folder)!r}: cannot be written ({reason}); "
                "set hydra.run.dir (or paths.log_dir) to a folder you can write",
                file=sys.stderr,
            )
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")
