"""Read IMDB from the Hub, a local folder in the Hub layout, or the raw `aclImdb/` tree."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import datasets
from datasets import ClassLabel, Dataset, DatasetDict

from rnnlab.utils.errors import ConfigError

LABELS = ClassLabel(names=["neg", "pos"])
ACL_SPLITS = {"train": ("neg", "pos"), "test": ("neg", "pos"), "unsupervised": ("unsup",)}


def _acl_root(path: Path) -> Path | None:
    for root in (path, path / "aclImdb"):
        if (root / "train" / "pos").is_dir():
            return root
    return None


def _read_acl(root: Path) -> DatasetDict:
    """Build the same DatasetDict the Hub gives from the Stanford tarball's text files."""
    splits = {}
    for split, folders in ACL_SPLITS.items():
        folder = "train" if split == "unsupervised" else split
        texts, labels = [], []
        for name in folders:
            directory = root / folder / name
            if not directory.is_dir():
                continue
            label = -1 if name == "unsup" else LABELS.str2int(name)
            for file in sorted(directory.glob("*.txt")):
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
                labels.append(label)
        if texts:
            splits[split] = Dataset.from_dict({"text": texts, "label": labels})
    return DatasetDict(splits)


def source_fingerprint(path: str) -> str:
    """Identify a data source without reading it, so a cached run can skip loading entirely."""
    local = Path(path)
    h = hashlib.sha256()
    if local.exists():
        h.update(str(local.resolve()).encode())
        for file in sorted(p for p in local.rglob("*") if p.is_file() and p.suffix != ".lock"):
            stat = file.stat()
            h.update(f"{file.relative_to(local)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        h.update(path.encode())
    return h.hexdigest()[:16]


def load_imdb(path: str) -> DatasetDict:
    """Return splits `train`/`test` (+ `unsupervised` if present) with `text` and 0/1 `label`."""
    local = Path(os.path.expanduser(path))
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1
    if looks_local and not local.is_dir():
        raise ConfigError(
            f"data.path={path!r}: no such folder (looked at {local.resolve()}); "
            "set IMDB_DIR or data.path to a Hub-layout IMDB folder or an aclImdb/ folder"
        )
    acl = _acl_root(local) if looks_local else None
    try:
        ds = _read_acl(acl) if acl else datasets.load_dataset(str(local) if looks_local else path)
    except (
        FileNotFoundError,
        ValueError,
        datasets.exceptions.DatasetNotFoundError,
        datasets.exceptions.DatasetGenerationError,
    ) as err:
        raise ConfigError(
            f"data.path={path!r}: could not load a dataset there ({type(err).__name__}); "
            "set IMDB_DIR or data.path to a Hub-layout IMDB folder or an aclImdb/ folder"
        ) from err
    return _validated(ds, path)


def _validated(ds: DatasetDict, path: str) -> DatasetDict:
    for split in ("train", "test"):
        if split not in ds:
            raise ConfigError(
                f"data.path={path!r}: has no {split!r} split (found {sorted(ds)}); "
                "a train and a test split are required"
            )
        missing = {"text", "label"} - set(ds[split].column_names)
        if missing:
            raise ConfigError(
                f"data.path={path!r}: split {split!r} lacks column(s) {sorted(missing)}; "
                "columns 'text' and 'label' are required"
            )
        labels = set(ds[split].unique("label"))
        if not labels <= {0, 1}:
            raise ConfigError(
                f"data.path={path!r}: split {split!r} has labels {sorted(labels)}; only 0/1 allowed"
            )
        if ds[split].data.column("text").null_count:
            raise ConfigError(
                f"data.path={path!r}: split {split!r} has missing texts; every row needs a text"
            )
        if not isinstance(ds[split].features["label"], ClassLabel):
            ds[split] = ds[split].cast_column("label", LABELS)
    return ds


def classifier_split(train: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """The classifier's (train, validation) reviews: stratified and seeded. The language model
    leaves the same validation reviews out, so a fine-tuned classifier's validation stays unseen."""
    parts = train.train_test_split(test_size=val_fraction, stratify_by_column="label", seed=seed)
    return parts["train"], parts["test"]
