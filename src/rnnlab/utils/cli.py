"""Checks on the command line that must happen before Hydra composes (its errors span many lines)."""

from __future__ import annotations

import sys
from pathlib import Path

from rnnlab.utils.extras import missing_extra


def group_choices(group: str, conf_dir: Path) -> list[str]:
    folder = conf_dir / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def unknown_group_choice(argv: list[str], conf_dir: Path) -> str | None:
    """The one-line error for `group=name` when conf/<group>/name.yaml does not exist."""
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or "." in key or key.startswith("hydra"):  # model/readout=x is a group too
            continue
        choices = group_choices(key, conf_dir)
        if not choices:
            continue
        names = [v.strip() for v in value.strip("[]").split(",")] if "," in value else [value]
        for name in names:
            if name not in choices and name != "null":
                return f"{key}={name!r}: unknown; choose one of {', '.join(choices)}"
    return None


def group_choice_missing_extra(argv: list[str]) -> str | None:
    """The one-line error for `group=name` whose optional dependencies are not installed."""
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if sep and (message := missing_extra(key, value)):
            return message
    return None


def exit_on_unknown_group_choice(conf_dir: Path, argv: list[str] | None = None) -> None:
    """Exit 2 with one line for a choice that does not exist or whose extra is missing."""
    argv = sys.argv[1:] if argv is None else argv
    message = unknown_group_choice(argv, conf_dir) or group_choice_missing_extra(argv)
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
