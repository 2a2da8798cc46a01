"""IMDB as a LightningDataModule: load, split, tokenize once (cached), serve bucketed batches."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import datasets
import torch
from datasets import DatasetDict, Features, Sequence, Value
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from rnnlab.data.cache import keyed_folder, load_or_rebuild
from rnnlab.data.dataset import TRUNCATION_SIDES, EncodedReviews, pad_collate
from rnnlab.data.loading import LABELS, classifier_split, load_imdb, source_fingerprint
from rnnlab.data.sampler import BucketBatchSampler, ResumableDataLoader
from rnnlab.data.tokenizer import (
    KINDS,
    PUNCTUATION,
    TokenizerSizes,
    build_tokenizer,
    load_tokenizer,
)
from rnnlab.utils.errors import ConfigError, check, check_choice
from rnnlab.utils.io import atomic_dir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
SPLITS = ("train", "val", "test")


class IMDBDataModule(TokenizerSizes, LightningDataModule):
    """`tokenizer_json` reuses a trained tokenizer (eval from a checkpoint) instead of training one."""

    def __init__(
        self,
        path: str,
        cache_dir: str = ".cache",
        vocab_size: int = 20000,
        tokenizer: str = "wordlevel",
        punctuation: str = "keep",
        max_len: int = 400,
        truncation: str = "head_tail",
        val_fraction: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        pool_factor: int = 50,
        seed: int = 42,
        tokenizer_json: str | None = None,
    ) -> None:
        super().__init__()
        check(
            isinstance(vocab_size, int) and vocab_size > 2,
            "data.vocab_size",
            vocab_size,
            "an integer > 2",
        )
        check_choice("data.tokenizer", tokenizer, KINDS)
        check_choice("data.punctuation", punctuation, PUNCTUATION)
        check(isinstance(max_len, int) and max_len >= 1, "data.max_len", max_len, "an integer >= 1")
        check_choice("data.truncation", truncation, TRUNCATION_SIDES)
        check(0 < val_fraction < 1, "data.val_fraction", val_fraction, "a number in (0, 1)")
        for key, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            check(isinstance(value, int) and value >= 1, f"data.{key}", value, "an integer >= 1")
        check(
            isinstance(num_workers, int) and num_workers >= 0,
            "data.num_workers",
            num_workers,
            "an integer >= 0",
        )
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)
        self.tokenizer_json = tokenizer_json
        self.splits: dict[str, EncodedReviews] = {}

    @functools.cached_property
    def cache_path(self) -> Path:
        """A given tokenizer (eval from a checkpoint) reuses the training run's cache when that
        cache holds the very same tokenizer, instead of encoding everything again."""
        trained_here = self._cache_path_for(None)
        if self.tokenizer_json is None:
            return trained_here
        saved = trained_here / "tokenizer.json"
        if (trained_here / "meta.json").is_file() and saved.read_text(
            encoding="utf-8"
        ) == self.tokenizer_json:
            return trained_here
        return self._cache_path_for(self.tokenizer_json)

    def _cache_path_for(self, tokenizer_json: str | None) -> Path:
        """Keyed by data source + everything that changes the encoding (not max_len: applied late)."""
        hp = self.hparams
        key = {
            "format": CACHE_FORMAT,
            "source": source_fingerprint(hp.path),
            "vocab_size": hp.vocab_size,
            "tokenizer": hp.tokenizer,
            "punctuation": hp.punctuation,
            "val_fraction": hp.val_fraction,
            "seed": hp.seed,
            "given_tokenizer": hashlib.sha256(tokenizer_json.encode()).hexdigest()
            if tokenizer_json
            else None,
        }
        return keyed_folder(hp.cache_dir, "imdb", key)

    def prepare_data(self) -> None:
        if (self.cache_path / "meta.json").is_file():
            return
        hp = self.hparams
        raw = load_imdb(hp.path)
        train, val = classifier_split(raw["train"], hp.val_fraction, hp.seed)
        splits = DatasetDict(train=train, val=val, test=raw["test"])
        if self.tokenizer_json:
            tokenizer = load_tokenizer(self.tokenizer_json)
        else:
            log.info(
                "Training a %s tokenizer (vocab %d) on %d reviews",
                hp.tokenizer,
                hp.vocab_size,
                len(splits["train"]),
            )
            tokenizer = build_tokenizer(
                splits["train"]["text"], hp.vocab_size, hp.tokenizer, punctuation=hp.punctuation
            )

        def encode(batch: dict[str, list]) -> dict[str, list]:
            return {"input_ids": [e.ids for e in tokenizer.encode_batch(batch["text"])]}

        features = Features({"label": LABELS, "input_ids": Sequence(Value("int32"))})
        with atomic_dir(self.cache_path) as tmp:
            for name, split in splits.items():
                encoded = split.map(
                    encode,
                    batched=True,
                    batch_size=1000,
                    remove_columns=["text"],
                    features=features,
                    keep_in_memory=True,
                    new_fingerprint=f"{self.cache_path.name}-{name}",
                    desc=f"Tokenizing {name}",
                )
                encoded.save_to_disk(str(tmp / name))
            (tmp / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
            (tmp / "meta.json").write_text(
                json.dumps({"source": hp.path, "sizes": {k: len(v) for k, v in splits.items()}})
            )

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            load_or_rebuild(self.cache_path, self.prepare_data, self._load_cache)

    def _load_cache(self) -> None:
        meta = json.loads((self.cache_path / "meta.json").read_text(encoding="utf-8"))
        self.tokenizer_json = (self.cache_path / "tokenizer.json").read_text(encoding="utf-8")
        splits = {}
        for name in SPLITS:
            table = datasets.load_from_disk(str(self.cache_path / name)).data.table
            splits[name] = EncodedReviews.from_arrow(
                table, self.hparams.max_len, self.hparams.truncation
            )
            if len(splits[name]) != meta["sizes"][name]:
                raise ValueError(
                    f"{name}: {len(splits[name])} rows, meta.json says {meta['sizes'][name]}"
                )
        self.splits = splits

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            raise ConfigError(f"data split {split!r} is not set up; call setup() first")
        data = self.splits[split]
        trainer = self.trainer
        sampler = BucketBatchSampler(
            data.lengths,
            batch_size,
            shuffle=shuffle,
            seed=self.hparams.seed,
            pool_factor=self.hparams.pool_factor,
            num_replicas=trainer.world_size if trainer else None,
            rank=trainer.global_rank if trainer else None,
        )
        return ResumableDataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=functools.partial(pad_collate, pad_id=self.pad_id),
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            # its own generator: starting an epoch must not draw from the global RNG (dropout's)
            generator=torch.Generator().manual_seed(self.hparams.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, shuffle=True)

    # Evaluation order is a fixed (seeded, never re-shuffled) permutation, not file order: the
    # test split is stored negatives first, so limit_test_batches would otherwise see one class.
    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.eval_batch_size, shuffle=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size, shuffle=True)
