"""Checks on the command line that must happen before Hydra composes (its errors span many lines)."""

from __future__ import annotations

import sys
from pathlib import Path


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


def exit_on_unknown_group_choice(conf_dir: Path, argv: list[str] | None = None) -> None:
    message = unknown_group_choice(sys.argv[1:] if argv is None else argv, conf_dir)
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
