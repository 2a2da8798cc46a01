"""One-line configuration errors: name the key, the value and what is allowed."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


class ConfigError(ValueError):
    """A user-facing error whose message is complete on one line."""


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError("key=value: allowed") unless ok."""
    if not ok:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def check_choice(key: str, value: Any, choices: Collection[str]) -> None:
    check(value in choices, key, value, f"one of {list(choices)}")
