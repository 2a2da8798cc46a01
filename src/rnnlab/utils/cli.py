"""Checks on the command line that must happen before Hydra composes (its errors span many lines)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import OmegaConf

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


def _one_value(override: Override) -> str:
    """The override with a sweep (`model=rnn,gru`) cut to its first value: enough to compose."""
    if not override.is_sweep_override():
        return override.input_line
    first = next(iter(override.sweep_string_iterator()))
    return f"{override.get_key_element()}={first}"


def _missing_part(tree: Any, key: str) -> str | None:
    """The one-line error for `key` when the composed config (a plain tree) has no such key."""
    node, path = tree, []
    for part in key.split("."):
        if not isinstance(node, dict):
            return None  # into a list or a value: Hydra's own message says what is wrong
        if part not in node:
            where = ".".join(path) or "the config"
            close = difflib.get_close_matches(part, list(node), n=1)
            hint = f"did you mean {'.'.join([*path, close[0]])}?" if close else "see --cfg job"
            return f"{key}: {where} has no key {part!r}; {hint} (a new key takes a +: +{key}=...)"
        node, path = node[part], [*path, part]
    return None


def unknown_key(argv: list[str], conf_dir: Path, config_name: str) -> str | None:
    """The one-line error for `a.b=value` when the composed config has no `a.b` (Hydra's own
    spans several lines and suggests `+a.b`, which the component would then refuse)."""
    try:
        overrides = OverridesParser.create().parse_overrides(
            [a for a in argv if "=" in a and not a.startswith("-")]
        )
    except Exception:  # a malformed override: Hydra reports it itself
        return None
    outside_hydra = [o for o in overrides if not o.key_or_group.startswith("hydra")]
    keys = [o for o in outside_hydra if o.type is OverrideType.CHANGE and "." in o.key_or_group]
    if not keys:
        return None
    rest = [_one_value(o) for o in outside_hydra if o not in keys]
    try:
        with initialize_config_dir(config_dir=str(conf_dir.absolute()), version_base="1.3"):
            tree = OmegaConf.to_container(compose(config_name, overrides=rest), resolve=False)
    except Exception:  # the run itself will report why the config does not compose
        return None
    return next(filter(None, (_missing_part(tree, o.key_or_group) for o in keys)), None)


def exit_on_bad_command_line(
    conf_dir: Path, config_name: str, argv: list[str] | None = None
) -> None:
    """Exit 2 with one line for a choice that does not exist or whose extra is missing, or a
    key the config does not have."""
    argv = sys.argv[1:] if argv is None else argv
    message = (
        unknown_group_choice(argv, conf_dir)
        or group_choice_missing_extra(argv)
        or unknown_key(argv, conf_dir, config_name)
    )
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
