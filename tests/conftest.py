"""Synthetic IMDB-like reviews in both local layouts, and Hydra composition helpers."""

from __future__ import annotations

import os
import random
from pathlib import Path

# The test models are tiny: one thread is faster than two threads synchronising, and the
# subprocesses the tests start (train.py, DDP ranks) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Value
from hydra import compose, initialize_config_dir
from lightning import Trainer
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader

from rnnlab.data.dataset import pad_collate

# `datasets` writes a progress bar to stderr whenever it first reads a folder, which depends on
# which test of a worker reads it first; tests that count stderr's lines must not see it
datasets.disable_progress_bars()

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file
CONF = ROOT / "conf"
REAL_IMDB = os.environ.get("IMDB_DIR", str(ROOT.parent / "shared" / "data" / "imdb"))

POSITIVE = ["great", "wonderful", "moving", "superb", "loved", "brilliant"]
NEGATIVE = ["awful", "boring", "terrible", "waste", "hated", "dull"]
FILLER = ["the", "film", "a", "plot", "actor", "scene", "was", "and", "of", "it", "story", "<br />"]


def make_reviews(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Balanced reviews whose label is carried by a few sentiment words among filler."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 40))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return texts, labels


def write_hub_layout(root: Path, n_train: int = 240, n_test: int = 120, seed: int = 0) -> Path:
    (root / "plain_text").mkdir(parents=True)
    features = Features(text=Value("string"), label=ClassLabel(names=["neg", "pos"]))
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        texts, labels = make_reviews(n, s)
        Dataset.from_dict({"text": texts, "label": labels}, features=features).to_parquet(
            root / "plain_text" / f"{split}-00000-of-00001.parquet"
        )
    return root


def write_acl_layout(root: Path, n_train: int = 240, n_test: int = 120, seed: int = 0) -> Path:
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        texts, labels = make_reviews(n, s)
        for i, (text, label) in enumerate(zip(texts, labels)):
            folder = root / "aclImdb" / split / ("pos" if label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:05d}_{7 if label else 2}.txt").write_text(text, encoding="utf-8")
    return root / "aclImdb"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads xdist_group into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start several processes of their own (DDP ranks, SLURM jobs, the suite in a
    copy) queue on one xdist worker, so that no two of them share the cores at once (and one
    worker starts and stops the local SLURM cluster)."""
    for item in items:
        if any(item.get_closest_marker(mark) for mark in ("multiprocess", "slurm")):
            item.add_marker(pytest.mark.xdist_group("processes"))


@pytest.fixture(scope="session")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hub_layout(tmp_path_factory.mktemp("hub_imdb"))


@pytest.fixture(scope="session")
def acl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_acl_layout(tmp_path_factory.mktemp("acl_imdb"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def compose_cfg(
    config_name: str,
    overrides: list[str],
    output_dir: Path,
    cache: Path,
    data: Path | str | None = None,
) -> DictConfig:
    """Compose like the entry points do, with run paths that need no Hydra runtime."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.root_dir = str(ROOT)
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        cfg.paths.cache_dir = str(cache)
        # a synthetic task reads no files (keys(): `in` alone misses a mandatory ??? path)
        if data is not None and "data" in cfg and "path" in cfg.data.keys():  # noqa: SIM118
            cfg.data.path = str(data)
    return cfg


TINY = [
    "model.embedding_dim=16",
    "model.hidden_size=16",
    "data.batch_size=8",
    "data.eval_batch_size=32",
    "data.vocab_size=100",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.progress_bar=null",
]


def item_loader(items: list, batch_size: int) -> DataLoader:
    """(token ids, label) items batched the way the data module pads them (pad id 0)."""
    return DataLoader(items, batch_size=batch_size, collate_fn=lambda batch: pad_collate(batch, 0))


def quiet_trainer(**kwargs) -> Trainer:
    """A CPU Trainer that writes nothing and prints little."""
    defaults = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return Trainer(**{**defaults, **kwargs})


TOPICS = {
    "world": ["election", "minister", "border", "treaty", "embassy"],
    "sports": ["match", "goal", "coach", "league", "tournament"],
    "business": ["market", "shares", "profit", "merger", "investor"],
    "science": ["planet", "genome", "physics", "laboratory", "telescope"],
}
NEWS_FILLER = ["the", "a", "report", "said", "on", "today", "new", "and", "of", "in", "after"]


def make_sentences(n: int, num_classes: int, seed: int) -> tuple[list[str], list[int]]:
    """Class-balanced sentences whose topic is carried by a few topic words among filler."""
    rng = random.Random(seed)
    words_of = list(TOPICS.values())[:num_classes]
    texts, labels = [], []
    for i in range(n):
        label = i % num_classes
        words = [rng.choice(NEWS_FILLER) for _ in range(rng.randint(3, 15))]
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(words_of[label]))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return texts, labels


def write_multiclass_hub_layout(
    root: Path,
    n_train: int = 400,
    n_val: int = 80,
    n_test: int = 120,
    num_classes: int = 4,
    seed: int = 0,
) -> Path:
    """A Hub-layout topic dataset: columns `sentence` and `topic` (a ClassLabel of `num_classes`
    names from TOPICS), splits train/validation/test; load with data.text_column=sentence,
    data.label_column=topic, data.num_classes, data.val_split=validation."""
    if not 2 <= num_classes <= len(TOPICS):
        raise ValueError(f"num_classes={num_classes}: 2..{len(TOPICS)} topics are available")
    (root / "data").mkdir(parents=True)
    # the ClassLabel travels in the parquet files' schema metadata; the file names give the splits
    features = Features(
        sentence=Value("string"), topic=ClassLabel(names=list(TOPICS)[:num_classes])
    )
    for offset, (split, n) in enumerate(
        (("train", n_train), ("validation", n_val), ("test", n_test))
    ):
        texts, labels = make_sentences(n, num_classes, seed + offset)
        Dataset.from_dict({"sentence": texts, "topic": labels}, features=features).to_parquet(
            root / "data" / f"{split}-00000-of-00001.parquet"
        )
    return root


@pytest.fixture(scope="session")
def multiclass_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-topic dataset in the Hub layout (see write_multiclass_hub_layout)."""
    return write_multiclass_hub_layout(tmp_path_factory.mktemp("hub_topics"))
