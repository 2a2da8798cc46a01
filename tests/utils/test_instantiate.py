"""Callbacks and loggers from their config groups; the wandb logger's no-credentials fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig

from rnnlab.utils.instantiate import instantiate_loggers
from tests.conftest import compose_cfg

NOTICE = "wandb: no credentials found, logging offline (WANDB_MODE=offline)"


@pytest.fixture
def no_wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No WANDB_MODE (CI sets it to offline for every test), no API key, an empty home without a
    ~/.netrc (NETRC points at a file that does not exist). Returns the home directory."""
    home = tmp_path / "home"
    home.mkdir()
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    return home


def _wandb_cfg(tmp_path: Path) -> DictConfig:
    return compose_cfg("train", ["logger=wandb"], tmp_path / "run", tmp_path).logger


def test_without_wandb_mode_or_credentials_the_logger_goes_offline_with_one_notice(
    no_wandb_env: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Catches a fallback that stays online (wandb would then ask for a key or fail at the first
    log call), that ignores an absent ~/.netrc, or that warns more than once or in many lines."""
    with caplog.at_level(logging.WARNING, logger="rnnlab.utils.instantiate"):
        (logger,) = instantiate_loggers(_wandb_cfg(tmp_path))
    assert isinstance(logger, WandbLogger)
    assert logger._offline is True  # what WandbLogger.experiment turns into WANDB_MODE=dryrun
    assert [r.getMessage() for r in caplog.records] == [NOTICE]


@pytest.mark.parametrize("credentials", ["api_key", "netrc", "wandb_mode"])
def test_credentials_or_an_explicit_wandb_mode_leave_the_logger_as_configured(
    credentials: str,
    no_wandb_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Catches a fallback that always goes offline: a logged-in user (WANDB_API_KEY, or the
    api.wandb.ai entry `wandb login` writes to ~/.netrc) or an explicit WANDB_MODE must keep
    the configured online logger, without the notice."""
    if credentials == "api_key":
        monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    elif credentials == "netrc":
        netrc = no_wandb_env / ".netrc"
        netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
        netrc.chmod(0o600)
    else:
        monkeypatch.setenv("WANDB_MODE", "online")
    with caplog.at_level(logging.WARNING, logger="rnnlab.utils.instantiate"):
        (logger,) = instantiate_loggers(_wandb_cfg(tmp_path))
    assert logger._offline is False
    assert caplog.records == []
