"""The composed config as a Rich tree: what a run was given, readable at a glance and kept."""

from __future__ import annotations

from pathlib import Path

import yaml
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from rnnlab.utils.io import atomic_write_text

CONFIG_TREE_FILE = "config_tree.log"


@rank_zero_only
def print_config_tree(cfg: DictConfig, run_dir: Path) -> None:
    """Print one branch per top-level key (interpolations as written, so nothing has to resolve
    yet) and save the same text as `run_dir/config_tree.log`."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", style="bold", guide_style="dim")
    for key, value in OmegaConf.to_container(cfg, resolve=False).items():
        text = yaml.safe_dump(value, sort_keys=False).removesuffix("...\n").rstrip()
        tree.add(str(key), style="yellow").add(Syntax(text, "yaml"))
    console = Console(record=True)
    console.print(tree)
    atomic_write_text(run_dir / CONFIG_TREE_FILE, console.export_text())
