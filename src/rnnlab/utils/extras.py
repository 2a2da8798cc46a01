"""Optional features and the pip extra that installs each: a missing one fails in one line."""

from __future__ import annotations

import sys
from importlib.util import find_spec

# config group -> (module, its pip package) pairs that any option of the group needs, and the extra
GROUP_EXTRAS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "hparams_search": (
        (("optuna", "optuna"), ("optuna_integration", "optuna-integration")),
        "optuna",
    ),
    "hydra/launcher": (
        (("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),),
        "slurm",
    ),
}


def importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False
    except ValueError:  # imported already, by a lazy loader that leaves __spec__ None
        return sys.modules.get(module) is not None


def install_hint(feature: str, package: str, extra: str) -> str:
    return f'{feature} needs {package}: pip install -e ".[{extra}]"'


def missing_extra(group: str, choice: str) -> str | None:
    """The one-line message for `group=choice` when its extra is not installed, else None."""
    modules, extra = GROUP_EXTRAS.get(group, ((), ""))
    for module, package in modules:
        if choice != "null" and not importable(module):
            return install_hint(f"{group}={choice}", package, extra)
    return None
