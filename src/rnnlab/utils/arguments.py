"""Check a config's `_target_` nodes against the signatures they will be called with, so a
misspelt key or a value of the wrong type is refused in one line before anything is built
(Lightning and torch would fail deep inside, with long tracebacks)."""

from __future__ import annotations

import difflib
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from hydra.utils import get_object

from rnnlab.utils.errors import ConfigError

HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
PLAIN = (bool, int, float, str, type(None))
PATHS = (os.PathLike, PurePath)


def _signature(target: Callable) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    """The target's parameters and type hints (none where its annotations do not resolve)."""
    function = inspect.unwrap(target.__init__ if inspect.isclass(target) else target)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations naming what is only imported for type checkers
        hints = {}
    return dict(inspect.signature(target).parameters), hints


def _members(hint: Any) -> tuple[Any, ...]:
    return (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )


def fits(value: Any, hint: Any) -> bool:
    """Whether a config value (None, bool, int, float, str, list, dict) can be what `hint`
    allows; a generic hint it cannot judge (Iterable[...], Callable[...]) lets it pass."""
    for member in _members(hint):
        origin = typing.get_origin(member)
        if origin is typing.Literal:
            if value in typing.get_args(member) and type(value) in map(
                type, typing.get_args(member)
            ):
                return True
        elif member in PLAIN:
            if member is float and isinstance(value, int | float) and not isinstance(value, bool):
                return True
            if member is int and isinstance(value, int) and not isinstance(value, bool):
                return True
            if member in (bool, str, type(None)) and isinstance(value, member):
                return True
        elif origin in (list, tuple, set) or member in (list, tuple, set):
            if isinstance(value, list | tuple):
                return True
        elif origin is dict or member is dict:
            if isinstance(value, Mapping):
                return True
        elif inspect.isclass(member) and origin is None:
            # a plain value is never a tensor or a strategy; a string can name a path
            if isinstance(value, member) or (issubclass(member, PATHS) and isinstance(value, str)):
                return True
        else:  # a generic (Iterable[...], Callable[...]): not judged
            return True
    return False


def describe(hint: Any) -> str:
    """`int or None`, `'cos' or 'linear'`: what a hint allows, in words."""
    words = []
    for member in _members(hint):
        if typing.get_origin(member) is typing.Literal:
            words += [repr(v) for v in typing.get_args(member)]
        elif member is type(None):
            words.append("None")
        else:
            words.append(getattr(member, "__name__", str(member)))
    return " or ".join(words)


def check_arguments(node: Any, key: str) -> None:
    """Every `_target_` node in `node` (a resolved config: dicts and lists), `key` its place:
    each key must be a parameter of the target and each plain value fit its type hint."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_arguments(item, f"{key}.{i}")
        return
    if not isinstance(node, Mapping):
        return
    for name, value in node.items():
        if name not in HYDRA_KEYS:
            check_arguments(value, f"{key}.{name}")
    if not isinstance(node.get("_target_"), str):
        return
    try:
        parameters, hints = _signature(get_object(node["_target_"]))
    except (ImportError, ValueError, TypeError):  # Hydra reports a target it cannot import
        return
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name, value in node.items():
        if name in HYDRA_KEYS:
            continue
        if name not in parameters:
            if open_ended:
                continue
            close = difflib.get_close_matches(name, list(parameters), n=1)
            hint = f"did you mean {key}.{close[0]}?" if close else "see its parameters"
            raise ConfigError(f"{key}.{name}: not a parameter of {node['_target_']}; {hint}")
        if name in hints and not isinstance(value, Mapping) and not fits(value, hints[name]):
            raise ConfigError(f"{key}.{name}={value!r}: {describe(hints[name])} expected")
