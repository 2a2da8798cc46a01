"""The encoded-data caches' shared mechanics: a folder keyed by what changes the encoding, built
atomically, and rebuilt (never trusted) when it turns out damaged after it was written."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

log = logging.getLogger(__name__)


def keyed_folder(root: str, prefix: str, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / f"{prefix}-{digest}"


def load_or_rebuild(folder: Path, build: Callable[[], None], load: Callable[[], None]) -> None:
    """`build` writes `folder` (with meta.json last) when it is missing; `load` reads it."""
    if not (folder / "meta.json").is_file():
        build()
    try:
        load()
    except Exception as err:
        log.warning(
            "Encoded-data cache %s is unreadable (%s); rebuilding it", folder, type(err).__name__
        )
        shutil.rmtree(folder, ignore_errors=True)
        build()
        load()


def read_arrow_folder(folder: Path) -> pa.Table:
    """A split written by `datasets`' `save_to_disk` (Arrow stream files), read with pyarrow
    alone: a cached start then never imports `datasets`, which takes most of a second."""
    files = sorted(folder.glob("data-*.arrow"))
    if not files:
        raise FileNotFoundError(f"{folder}: no data-*.arrow files")
    return pa.concat_tables(pa.ipc.open_stream(pa.memory_map(str(f))).read_all() for f in files)
