"""Atomic writes, so a kill at any moment never leaves a truncated file a later run trusts.

Each writes a hidden temporary (`.<name>.<random>.tmp`) in the target's own folder, fsyncs it and
`os.replace`s it over the target: a reader sees the old file or the new one, never part of one. A
kill leaves at most such a temporary behind, which nothing reads (no reader globs for it)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write (stream) into; it becomes `path` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch directory that becomes `path` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _scratch_dir(path)
    try:
        yield tmp
        _replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _scratch_dir(path: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))


def _replace_dir(tmp: Path, path: Path, tries: int = 10) -> None:
    """Rename `tmp` to `path`, moving an existing `path` aside first (both renames are atomic).
    Another process may publish the same folder meanwhile (runs that share a data cache, each
    finding it missing): then `path` is taken again, and the last rename wins."""
    for attempt in range(tries):
        old = _scratch_dir(path)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, old)  # a folder may replace an empty one
        try:
            os.replace(tmp, path)
            return
        except OSError as err:  # another process's folder arrived at `path` in between
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == tries - 1:
                raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
