"""Read any text dataset: a Hub name, a local folder in the Hub layout, or IMDB's raw `aclImdb/`
tree, and check the splits and columns a data module asks for before anything is encoded."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rnnlab.utils.errors import ConfigError

if TYPE_CHECKING:  # `datasets` is imported where it is used: a cached start never needs it
    from datasets import Dataset, DatasetDict

ACL_NAMES = ["neg", "pos"]
ACL_SPLITS = {"train": ("neg", "pos"), "test": ("neg", "pos"), "unsupervised": ("unsup",)}
LOCAL_HINT = (
    "set data.path to a local copy: a Hub-layout folder (what `datasets.load_dataset(folder)` "
    "reads) or an aclImdb/ folder; the presets read IMDB_DIR / SST2_DIR"
)


def _acl_root(path: Path) -> Path | None:
    for root in (path, path / "aclImdb"):
        if (root / "train" / "pos").is_dir():
            return root
    return None


def _read_acl(root: Path) -> DatasetDict:
    """Build the same DatasetDict the Hub gives from the Stanford tarball's text files."""
    import datasets

    labels_feature = datasets.ClassLabel(names=ACL_NAMES)
    splits = {}
    for split, folders in ACL_SPLITS.items():
        folder = "train" if split == "unsupervised" else split
        texts, labels = [], []
        for name in folders:
            directory = root / folder / name
            if not directory.is_dir():
                continue
            label = -1 if name == "unsup" else labels_feature.str2int(name)
            for file in sorted(directory.glob("*.txt")):
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
                labels.append(label)
        if texts:
            features = datasets.Features(
                text=datasets.Value("string"),
                label=labels_feature if split != "unsupervised" else datasets.Value("int64"),
            )
            splits[split] = datasets.Dataset.from_dict(
                {"text": texts, "label": labels}, features=features
            )
    return datasets.DatasetDict(splits)


def _local(path: str) -> tuple[Path, bool]:
    """A Hub name is `name` or `namespace/name`; anything else (or anything that exists) is local."""
    local = Path(os.path.expanduser(path))
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1
    return local, looks_local


def source_fingerprint(path: str) -> str:
    """Identify a data source without reading it, so a cached run can skip loading entirely."""
    local = Path(os.path.expanduser(path))
    h = hashlib.sha256()
    if local.exists():
        h.update(str(local.resolve()).encode())
        for file in sorted(p for p in local.rglob("*") if p.is_file() and p.suffix != ".lock"):
            stat = file.stat()
            h.update(f"{file.relative_to(local)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        h.update(path.encode())
    return h.hexdigest()[:16]


def source_slug(path: str, name: str | None = None) -> str:
    """A readable cache-folder prefix: the source's last path component (+ the subset name)."""
    local, looks_local = _local(path)
    last = (local.resolve() if looks_local else Path(path)).name
    words = [w for w in (last, name) if w]
    return re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-") or "data"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host ($HF_ENDPOINT) accepts a connection: `datasets` would otherwise
    retry for half a minute before failing with a traceback."""
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load_source(path: str, name: str | None = None) -> DatasetDict:
    """Every split of the dataset at `path` (subset `name`), as `datasets` gives it."""
    import datasets

    local, looks_local = _local(path)
    if looks_local and not local.is_dir():
        raise ConfigError(
            f"data.path={path!r}: no such folder (looked at {local.resolve()}); {LOCAL_HINT}"
        )
    # HF_HUB_OFFLINE=1 reads the Hub cache without asking the Hub, so only then is no check made
    if not looks_local and not _hub_offline() and not hub_reachable():
        raise ConfigError(
            f"data.path={path!r}: the Hugging Face Hub cannot be reached and no local copy was "
            "given; set data.path=<folder> (data=imdb reads IMDB_DIR=<folder>, data=sst2 SST2_DIR)"
        )
    acl = _acl_root(local) if looks_local else None
    try:
        if acl:
            return _read_acl(acl)
        return datasets.load_dataset(str(local) if looks_local else path, name)
    except ConnectionError as err:
        raise ConfigError(
            f"data.path={path!r}: the Hugging Face Hub cannot be reached ({_first_line(err)}); "
            f"{LOCAL_HINT}"
        ) from err
    except (
        FileNotFoundError,
        ValueError,
        datasets.exceptions.DatasetNotFoundError,
        datasets.exceptions.DatasetGenerationError,
    ) as err:
        raise ConfigError(
            f"data.path={path!r}{f' (data.name={name!r})' if name else ''}: could not load a "
            "dataset there "
            f"({type(err).__name__}: {_first_line(err)}); {LOCAL_HINT}"
        ) from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def text_splits(
    raw: DatasetDict,
    splits: Mapping[str, str],
    text_column: str,
    label_column: str | None = None,
    num_classes: int | None = None,
) -> tuple[DatasetDict, tuple[str, ...]]:
    """The named splits with columns `text` (+ `label` when `label_column` is given), checked.

    `splits` maps each split name to the config key that chose it, so an error names the key.
    With `num_classes`, labels must lie in [0, num_classes) and become a `ClassLabel`; the label
    names (the dataset's own, else "0".."n-1") are returned, empty without `num_classes`.
    """
    from datasets import ClassLabel, DatasetDict

    picked = {}
    for split, key in splits.items():
        if split not in raw:
            raise ConfigError(f"{key}={split!r}: no such split (found {sorted(raw)})")
        ds = raw[split]
        for column_key, column in (("text_column", text_column), ("label_column", label_column)):
            if column is not None and column not in ds.column_names:
                raise ConfigError(
                    f"data.{column_key}={column!r}: split {split!r} has no such column "
                    f"(found {ds.column_names})"
                )
        columns = {text_column: "text"} | ({label_column: "label"} if label_column else {})
        ds = ds.select_columns(list(columns)).rename_columns(
            {old: new for old, new in columns.items() if old != new}
        )
        missing = ds.data.column("text").null_count
        if missing:
            raise ConfigError(
                f"data.text_column={text_column!r}: split {split!r} has {missing} missing "
                "text(s); every row needs a text"
            )
        picked[split] = ds
    if num_classes is None:
        return DatasetDict(picked), ()
    picked = _named_classes(picked, label_column)
    names = _label_names(picked, label_column, num_classes)
    labels = ClassLabel(names=list(names))
    for split, ds in picked.items():
        _check_labels(ds, split, label_column, num_classes)
        picked[split] = ds.cast_column("label", labels)
    return DatasetDict(picked), names


def _holds_names(feature: object) -> bool:
    """Whether a label column holds class names (strings) rather than ids. A CSV read by
    `datasets` types its strings large_string, a parquet file string."""
    from datasets import Value

    return feature in (Value("string"), Value("large_string"))


def _named_classes(picked: dict[str, Dataset], label_column: str | None) -> dict[str, Dataset]:
    """String labels become class ids: the names sorted, over every chosen split, so the same
    name has the same id everywhere (the names travel in the checkpoint as `label_names`)."""
    from datasets import ClassLabel

    if not all(_holds_names(ds.features["label"]) for ds in picked.values()):
        return picked
    found = set().union(*(ds.unique("label") for ds in picked.values()))
    if None in found:
        raise ConfigError(
            f"data.label_column={label_column!r}: missing labels; every row needs a label"
        )
    labels = ClassLabel(names=sorted(found))
    return {split: ds.cast_column("label", labels) for split, ds in picked.items()}


def count_classes(raw: DatasetDict, splits: Sequence[str], label_column: str) -> int:
    """`data.num_classes: null`: a ClassLabel's count, else the distinct string names, else the
    largest integer id + 1, over the chosen splits."""
    from datasets import ClassLabel

    feature = raw[splits[0]].features.get(label_column) if splits[0] in raw else None
    if isinstance(feature, ClassLabel):
        return feature.num_classes
    columns = [raw[s] for s in splits if s in raw and label_column in raw[s].column_names]
    values = set().union(*(ds.unique(label_column) for ds in columns)) - {None}
    if all(_holds_names(ds.features[label_column]) for ds in columns):
        return len(values)
    return int(max(values)) + 1 if values else 0


def _label_names(
    picked: Mapping[str, Dataset], label_column: str | None, num_classes: int
) -> tuple[str, ...]:
    from datasets import ClassLabel

    names: tuple[str, ...] = ()
    for split, ds in picked.items():
        feature = ds.features["label"]
        if isinstance(feature, ClassLabel):
            if feature.num_classes != num_classes:
                raise ConfigError(
                    f"data.num_classes={num_classes!r}: split {split!r} labels "
                    f"({label_column!r}) have {feature.num_classes} classes {feature.names}"
                )
            names = names or tuple(feature.names)
    return names or tuple(str(i) for i in range(num_classes))


def _check_labels(ds: Dataset, split: str, label_column: str | None, num_classes: int) -> None:
    from datasets import ClassLabel

    feature = ds.features["label"]
    if not isinstance(feature, ClassLabel) and not re.fullmatch(r"u?int\d+", feature.dtype):
        raise ConfigError(
            f"data.label_column={label_column!r}: split {split!r} holds {feature.dtype} labels; "
            "integer class ids are required"
        )
    found = set(ds.unique("label"))
    if None in found:
        raise ConfigError(
            f"data.label_column={label_column!r}: split {split!r} has missing labels; "
            "every row needs a label"
        )
    if not found <= set(range(num_classes)):
        raise ConfigError(
            f"data.num_classes={num_classes!r}: split {split!r} has labels {sorted(found)}; "
            f"allowed 0..{num_classes - 1} (a split with hidden labels, e.g. -1, cannot be scored)"
        )


def classifier_split(train: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """The classifier's (train, validation) rows: stratified by `label` and seeded. The language
    model leaves the same validation rows out, so a fine-tuned classifier's validation stays
    unseen; the split depends on the label values alone, not on how the column is typed."""
    from datasets import ClassLabel

    if not isinstance(train.features["label"], ClassLabel):
        train = train.cast_column("label", ClassLabel(num_classes=max(train.unique("label")) + 1))
    parts = train.train_test_split(test_size=val_fraction, stratify_by_column="label", seed=seed)
    return parts["train"], parts["test"]
