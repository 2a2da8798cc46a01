"""Save `last.ckpt` when the run is stopped: SIGTERM (a scheduler pre-empting it) or Ctrl-C."""

from __future__ import annotations

import logging
from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class SaveOnInterrupt(Callback):
    """Not on other exceptions: a diverged run must keep its last good `last.ckpt`."""

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, (SIGTERMException, KeyboardInterrupt)) or not trainer.training:
            return
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        folder = (
            Path(checkpoint.dirpath)
            if checkpoint and checkpoint.dirpath
            else Path(trainer.default_root_dir)
        )
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path, weights_only=False)  # the whole state, to resume from
        log.warning(
            "Interrupted (%s): saved %s; resume with ckpt_path=%s",
            type(exception).__name__,
            path,
            path,
        )
