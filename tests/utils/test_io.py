"""Writes interrupted half-way: the previous file survives, and the next run neither trusts nor
trips over what the interrupted one left (metrics.json, the data cache and its tokenizer).

A kill is either an exception raised at a known point (in-process) or `os._exit` at a known point
of a child process, which runs no `finally` and no cleanup, like `kill -9`."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest

from rnnlab.data.datamodule import SPLITS, TextClassificationDataModule
from rnnlab.run.common import write_metrics
from rnnlab.tools.report import collect
from rnnlab.utils.io import atomic_dir, atomic_open, atomic_write_text
from tests.conftest import ROOT

IO_PY = ROOT / "src" / "rnnlab" / "utils" / "io.py"

KILLED = 77  # the child's exit status when it was killed at the planned point


class Killed(Exception):
    """Stands for the process dying at that point."""


def run_killed(body: str, tmp: Path) -> None:
    """Run `body` in a child Python that dies (os._exit: no `finally`, no cleanup) where it calls
    `die()`; fails unless it died there. `io` is rnnlab/utils/io.py, loaded alone (fast)."""
    prelude = f"""
        import importlib.util, os, sys
        from pathlib import Path
        tmp = Path({str(tmp)!r})
        def die(*args, **kwargs):
            sys.stdout.flush()
            os._exit({KILLED})
        spec = importlib.util.spec_from_file_location("io_alone", {str(IO_PY)!r})
        io = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(io)
    """
    code = textwrap.dedent(prelude) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == KILLED, (
        f"the child was not killed where planned (exit {proc.returncode}): {proc.stderr[-2000:]}"
    )


@contextlib.contextmanager
def killed_at(owner: object, name: str, when: Callable[..., bool]) -> Iterator[None]:
    """`owner.name(...)` raises Killed where `when(...)` holds, with the cleanup a kill would
    not run (os.unlink, shutil.rmtree) disabled: what is on disk then is what a kill leaves."""
    real = getattr(owner, name)

    def or_die(*args, **kwargs):
        if when(*args, **kwargs):
            raise Killed
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(owner, name, or_die)
        mp.setattr(os, "unlink", lambda *args, **kwargs: None)
        mp.setattr(shutil, "rmtree", lambda *args, **kwargs: None)
        with pytest.raises(Killed):
            yield


def leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- single files -------------------------------------------------------------------------------


def test_write_failing_at_the_rename_keeps_the_previous_file_and_no_temporary(tmp_path) -> None:
    """Catches a write into the target itself (in place): the target would hold the new or a
    partial text; and a failed write that leaves its temporary behind."""
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old\n")

    def replace(src, dst):
        raise Killed

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", replace)
        mp.setattr(os, "fsync", lambda fd: None)  # nothing else to see here; keep it fast
        with pytest.raises(Killed):
            atomic_write_text(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_kill_half_way_through_a_streamed_write_keeps_the_previous_file(tmp_path) -> None:
    """Catches atomic_open handing out the target itself: a kill after half the bytes would
    leave a truncated file under the real name. The kill leaves only a hidden `.name.*.tmp`,
    and the next write succeeds past it."""
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"A" * 10_000)
    run_killed(
        """
        with io.atomic_open(tmp / "last.ckpt") as f:
            f.write(b"B" * 5_000)
            f.flush()
            die()
            f.write(b"B" * 5_000)
        """,
        tmp_path,
    )
    assert target.read_bytes() == b"A" * 10_000
    (leftover,) = leftovers(tmp_path)
    assert leftover.name.startswith(".last.ckpt.")
    with atomic_open(target) as f:
        f.write(b"C" * 10_000)
    assert target.read_bytes() == b"C" * 10_000
    assert len(leftovers(tmp_path)) == 1  # left alone: nothing reads or trusts it


def test_metrics_json_killed_before_the_rename_keeps_the_previous_metrics(tmp_path) -> None:
    """Catches write_metrics writing metrics.json in place (json.dump into open(path, "w")):
    a kill mid-write leaves the old run's file truncated or replaced. Also that the report does
    not mistake the temporary a kill leaves for a run's metrics."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(
        "model: {encoder: {_target_: x.GRUEncoder}, readout: last}\n"
    )
    old = {"test/acc": 0.5, "val/acc_best": 0.5}
    write_metrics(SimpleNamespace(global_rank=0), run / "metrics.json", old)
    new = {"test/acc": 0.9, "val/acc_best": 0.9, "pad": "x" * 100_000}
    replace = os.replace

    def replace_or_die(src, dst):
        if Path(dst).name == "metrics.json":
            raise Killed
        replace(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", replace_or_die)
        mp.setattr(os, "unlink", lambda path: None)  # a real kill cleans nothing up
        with pytest.raises(Killed):
            write_metrics(SimpleNamespace(global_rank=0), run / "metrics.json", new)
    assert json.loads((run / "metrics.json").read_text()) == old
    assert len(leftovers(run)) == 1
    rows = collect([tmp_path])
    assert len(rows) == 1 and rows[0]["test_acc"] == 0.5


# --- folders ------------------------------------------------------------------------------------


def test_atomic_dir_failing_mid_block_keeps_the_previous_folder(tmp_path) -> None:
    """Catches atomic_dir renaming the scratch folder onto `path` before the block finishes (or
    deleting the old folder first): the old folder would be gone or half replaced."""
    target = tmp_path / "cache"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("old")
    with pytest.raises(Killed), atomic_dir(target) as tmp:
        (tmp / "a").write_text("new")
        raise Killed
    assert [p.name for p in target.iterdir()] == ["a"]
    assert (target / "a").read_text() == "old"
    assert leftovers(tmp_path) == []


def _publish(target: str, text: str) -> None:
    with atomic_dir(target) as tmp:
        for split in ("train", "validation", "test"):
            (tmp / split).mkdir()
            for shard in range(50):
                (tmp / split / str(shard)).write_text(text)


def _publish_many(target: str, name: str, start: multiprocessing.synchronize.Event) -> None:
    """A process replacing `target` again and again, as runs that share a data cache do when
    each finds it missing or stale."""
    start.wait()
    for i in range(20):
        _publish(target, f"{name} {i}")


def test_atomic_dir_published_by_several_processes_at_once_never_fails(tmp_path) -> None:
    """Catches atomic_dir deleting the folder in place before its rename: two runs started
    together, each rebuilding a stale data cache, then delete it at once and one of them dies."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    target = str(tmp_path / "cache")
    _publish(target, "stale")
    workers = [
        context.Process(target=_publish_many, args=(target, f"p{k}", start)) for k in range(3)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert sorted(p.name for p in Path(target).iterdir()) == ["test", "train", "validation"]
    texts = {p.read_text() for p in Path(target).rglob("*") if p.is_file()}
    assert len(texts) == 1 and texts != {"stale"}
    assert leftovers(tmp_path) == []


# --- the data cache (and the tokenizer in it) ---------------------------------------------------


def data_module(hub_dir: Path, cache: Path, **kwargs) -> TextClassificationDataModule:
    return TextClassificationDataModule(
        path=str(hub_dir), cache_dir=str(cache), vocab_size=100, batch_size=8, **kwargs
    )


@pytest.fixture(scope="module")
def reference(hub_dir, tmp_path_factory) -> TextClassificationDataModule:
    """The data built once, uninterrupted."""
    dm = data_module(hub_dir, tmp_path_factory.mktemp("reference_cache"))
    dm.setup()
    return dm


def assert_same_data(dm: TextClassificationDataModule, ref: TextClassificationDataModule) -> None:
    assert dm.tokenizer_json == ref.tokenizer_json
    assert dm.label_names == ref.label_names
    for name in SPLITS:
        got, want = dm.splits[name], ref.splits[name]
        assert len(got) == len(want)
        assert [list(map(int, got[i][0])) for i in range(0, len(got), 7)] == [
            list(map(int, want[i][0])) for i in range(0, len(want), 7)
        ]
        assert [int(got[i][1]) for i in range(len(got))] == [
            int(want[i][1]) for i in range(len(want))
        ]


def test_cache_build_killed_half_way_is_not_trusted_and_rebuilt(
    hub_dir, tmp_path, reference
) -> None:
    """The build killed while saving the test split (train and val written; test,
    tokenizer.json and meta.json not). Catches atomic_dir building in the real cache folder (or
    renaming it there before the block ends): the cache folder would exist with two of three
    splits; and `_building_cache` writing meta.json before the splits: the scratch folder would
    carry the marker of a finished cache. The next data module must rebuild, same data."""
    with killed_at(datasets.Dataset, "save_to_disk", lambda _, path, **kw: path.endswith("test")):
        data_module(hub_dir, tmp_path).setup()
    dm = data_module(hub_dir, tmp_path)
    assert not dm.cache_path.exists(), "a killed build left a cache folder under the real name"
    (scratch,) = leftovers(tmp_path)
    assert {p.name for p in scratch.iterdir()} == {"train", "val"}, "meta.json is not last"
    dm.setup()
    assert (dm.cache_path / "meta.json").is_file()
    assert_same_data(dm, reference)


def test_cache_folder_without_meta_json_is_rebuilt_not_read(
    hub_dir, tmp_path, reference, caplog
) -> None:
    """A folder under the cache's name without meta.json (an unfinished build by an in-place
    writer, a partial copy) is an unfinished build. Catches prepare_data or load_or_rebuild
    trusting the folder's existence rather than meta.json: it would be read (and fail, or be
    trusted) before any rebuild."""
    dm = data_module(hub_dir, tmp_path)
    folder = dm.cache_path
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text(reference.tokenizer_json[:200])  # cut short
    (folder / "train").mkdir()
    (folder / "train" / "data-00000-of-00001.arrow").write_bytes(b"\0" * 100)
    with caplog.at_level(logging.WARNING, logger="rnnlab.data.cache"):
        dm.setup()
    assert "unreadable" not in caplog.text, "the folder without meta.json was read"
    assert_same_data(dm, reference)


def test_damaged_cache_with_meta_json_is_rebuilt(hub_dir, tmp_path, reference, caplog) -> None:
    """A finished cache damaged afterwards (a truncated split file). Catches load_or_rebuild
    trusting a cache because meta.json is there: loading crashes with pyarrow's error instead of
    rebuilding."""
    data_module(hub_dir, tmp_path).setup()
    dm = data_module(hub_dir, tmp_path)
    (arrow,) = (dm.cache_path / "test").glob("*.arrow")
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="rnnlab.data.cache"):
        dm.setup()
    assert "unreadable" in caplog.text
    assert_same_data(dm, reference)


def test_tokenizer_killed_before_meta_json_is_not_reused_from_the_scratch_folder(
    hub_dir, tmp_path, reference
) -> None:
    """The build killed after tokenizer.json was written, before meta.json. Catches the
    tokenizer written where later runs look for it before the cache is complete (into the real
    cache folder, or atomic_dir renaming early): a run given that tokenizer (eval from a
    checkpoint) could take the unfinished folder for the training run's cache. Both kinds of
    data module then build their own cache and get the right data."""
    with killed_at(Path, "write_text", lambda self, *a, **kw: self.name == "meta.json"):
        data_module(hub_dir, tmp_path).setup()
    assert not data_module(hub_dir, tmp_path).cache_path.exists()
    (scratch,) = leftovers(tmp_path)
    assert (scratch / "tokenizer.json").is_file() and not (scratch / "meta.json").exists()
    given = data_module(hub_dir, tmp_path, tokenizer_json=reference.tokenizer_json)
    assert given.cache_path != data_module(hub_dir, tmp_path).cache_path
    given.setup()
    assert_same_data(given, reference)
    trained = data_module(hub_dir, tmp_path)
    trained.setup()
    assert_same_data(trained, reference)


def test_damaged_tokenizer_json_in_a_finished_cache_is_rebuilt(
    hub_dir, tmp_path, reference, caplog
) -> None:
    """A finished cache whose tokenizer.json was cut short afterwards. Catches the cache loader
    taking tokenizer.json as text without reading it as a tokenizer: the damage would only
    surface later (vocab_size, the model, the checkpoint) instead of causing a rebuild."""
    data_module(hub_dir, tmp_path).setup()
    dm = data_module(hub_dir, tmp_path)
    saved = dm.cache_path / "tokenizer.json"
    saved.write_text(saved.read_text()[:100])
    with caplog.at_level(logging.WARNING, logger="rnnlab.data.cache"):
        dm.setup()
        assert dm.vocab_size == reference.vocab_size
    assert "unreadable" in caplog.text
    assert_same_data(dm, reference)
