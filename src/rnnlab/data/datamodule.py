"""Any text-classification dataset (a Hub name or a local folder) as a LightningDataModule: load,
split, tokenize once (cached), serve bucketed batches."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from rnnlab.data.base import TextDataModule, check_counts
from rnnlab.data.cache import load_or_rebuild, read_arrow_folder
from rnnlab.data.dataset import (
    COVERED,
    TRUNCATION_SIDES,
    EncodedTexts,
    covering_length,
    pad_collate,
)
from rnnlab.data.loading import (
    classifier_split,
    count_classes,
    load_source,
    source_fingerprint,
    source_slug,
    text_splits,
)
from rnnlab.data.sampler import BucketBatchSampler
from rnnlab.data.tokenizer import KINDS, PUNCTUATION
from rnnlab.utils.errors import ConfigError, check, check_choice

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
SPLITS = ("train", "val", "test")


class TextClassificationDataModule(TextDataModule):
    """`path`: a Hub name (`imdb`, `stanfordnlp/sst2`), a Hub-layout folder or an `aclImdb/`
    folder; `name`: its subset (GLUE's `sst2`). Labels are integer ids, a ClassLabel, or strings
    (mapped to ids by sorted name); `num_classes` null counts them. `val_split` null carves a
    stratified, seeded `val_fraction` of the train split. `vocab_size` null keeps every training
    word seen `min_frequency` times; `max_len` null is the length 99% of the training texts fit
    in. `tokenizer_json` reuses a trained tokenizer (eval from a checkpoint) instead of training one.

    Batches: `input_ids` (B, T) right-padded with `pad_id`, `lengths` (B,), `labels` (B,) int64.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        num_classes: int | None = 2,
        train_split: str = "train",
        val_split: str | None = None,
        test_split: str = "test",
        cache_dir: str = ".cache",
        vocab_size: int | None = 20000,
        min_frequency: int = 1,
        tokenizer: str = "wordlevel",
        punctuation: str = "keep",
        max_len: int | None = 400,
        truncation: str = "head_tail",
        val_fraction: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool = False,
        pool_factor: int = 50,
        seed: int = 42,
        tokenizer_json: str | None = None,
    ) -> None:
        super().__init__()
        check(
            num_classes is None or (isinstance(num_classes, int) and num_classes >= 2),
            "data.num_classes",
            num_classes,
            "null (counted from the labels) or an integer >= 2",
        )
        check(
            (vocab_size is None and tokenizer == "wordlevel")
            or (isinstance(vocab_size, int) and vocab_size > 2),
            "data.vocab_size",
            vocab_size,
            "an integer > 2, or null (every word seen min_frequency times; data.tokenizer=wordlevel)",
        )
        check(
            isinstance(min_frequency, int) and min_frequency >= 1,
            "data.min_frequency",
            min_frequency,
            "an integer >= 1",
        )
        check_choice("data.tokenizer", tokenizer, KINDS)
        check_choice("data.punctuation", punctuation, PUNCTUATION)
        check_choice("data.truncation", truncation, TRUNCATION_SIDES)
        check(0 < val_fraction < 1, "data.val_fraction", val_fraction, "a number in (0, 1)")
        if max_len is not None:  # null: derived from the training lengths
            check_counts(max_len=max_len)
        check_counts(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            pool_factor=pool_factor,
        )
        check(
            isinstance(num_workers, int) and num_workers >= 0,
            "data.num_workers",
            num_workers,
            "an integer >= 0",
        )
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)
        self.tokenizer_json = tokenizer_json
        self.splits: dict[str, EncodedTexts] = {}

    def _cache_prefix(self) -> str:
        return source_slug(self.hparams.path, self.hparams.name)

    def _cache_key(self) -> dict[str, Any]:
        """Everything that changes the encoding (not max_len or truncation: applied late)."""
        hp = self.hparams
        carved = hp.val_split is None  # val_fraction and seed only matter then
        return {
            "format": CACHE_FORMAT,
            "source": source_fingerprint(hp.path),
            "name": hp.name,
            "columns": [hp.text_column, hp.label_column],
            "num_classes": hp.num_classes,
            "splits": [hp.train_split, hp.val_split, hp.test_split],
            "vocab_size": hp.vocab_size,
            "min_frequency": hp.min_frequency,
            "tokenizer": hp.tokenizer,
            "punctuation": hp.punctuation,
            "val_fraction": hp.val_fraction if carved else None,
            "seed": hp.seed if carved else None,
        }

    def raw_splits(self) -> tuple[DatasetDict, tuple[str, ...]]:
        """The train/val/test splits (columns `text`, `label`) the cache is built from, and the
        label names."""
        hp = self.hparams
        keys = {hp.train_split: "data.train_split", hp.test_split: "data.test_split"}
        if hp.val_split is not None:
            keys[hp.val_split] = "data.val_split"
        raw = load_source(hp.path, hp.name)
        num_classes = hp.num_classes or count_classes(raw, list(keys), hp.label_column)
        if num_classes < 2:
            raise ConfigError(
                f"data.num_classes={hp.num_classes!r}: data.label_column={hp.label_column!r} "
                f"holds {num_classes} class(es) over {sorted(keys)}; 2 or more are needed"
            )
        found, names = text_splits(raw, keys, hp.text_column, hp.label_column, num_classes)
        from datasets import DatasetDict  # only when building the cache: a slow import

        if hp.val_split is None:
            train, val = classifier_split(found[hp.train_split], hp.val_fraction, hp.seed)
        else:
            train, val = found[hp.train_split], found[hp.val_split]
        return DatasetDict(train=train, val=val, test=found[hp.test_split]), names

    def prepare_data(self) -> None:
        if (self.cache_path / "meta.json").is_file():
            return
        from datasets import Features, Sequence, Value

        splits, names = self.raw_splits()
        tokenizer = self._tokenizer(
            splits["train"]["text"],
            f"{len(splits['train'])} training texts",
            punctuation=self.hparams.punctuation,
            min_frequency=self.hparams.min_frequency,
        )

        def encode(batch: dict[str, list]) -> dict[str, list]:
            return {"input_ids": [e.ids for e in tokenizer.encode_batch(batch["text"])]}

        features = Features(
            {"label": splits["train"].features["label"], "input_ids": Sequence(Value("int32"))}
        )
        meta = {
            "source": self.hparams.path,
            "name": self.hparams.name,
            "label_names": list(names),
            "sizes": {k: len(v) for k, v in splits.items()},
        }
        with self._building_cache(tokenizer, meta) as tmp:
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

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            load_or_rebuild(self.cache_path, self.prepare_data, self._load_cache)

    def _load_cache(self) -> None:
        meta = self._read_cache_meta()
        tables = {name: read_arrow_folder(self.cache_path / name) for name in SPLITS}
        if self.hparams.max_len is None:
            # resolved once and kept in the hyperparameters, so the checkpoint's data config
            # (eval, predict) cuts texts exactly as training did
            self.hparams.max_len = covering_length(tables["train"])
            log.info(
                "data.max_len=null: %d tokens, which %.0f%% of the training texts fit in whole",
                self.hparams.max_len,
                100 * COVERED,
            )
        splits = {}
        for name, table in tables.items():
            splits[name] = EncodedTexts.from_arrow(
                table, self.hparams.max_len, self.hparams.truncation
            )
            if len(splits[name]) != meta["sizes"][name]:
                raise ValueError(
                    f"{name}: {len(splits[name])} rows, meta.json says {meta['sizes'][name]}"
                )
        self.label_names = tuple(meta["label_names"])
        self.splits = splits

    def _loader(self, split: str, batch_size: int, train: bool) -> DataLoader:
        if split not in self.splits:
            raise ConfigError(f"data split {split!r} is not set up; call setup() first")
        data = self.splits[split]
        world, rank = self._replicas()
        sampler = BucketBatchSampler(
            data.lengths,
            batch_size,
            shuffle=True,
            seed=self.hparams.seed,
            pool_factor=self.hparams.pool_factor,
            num_replicas=world,
            rank=rank,
        )
        kwargs = {
            "batch_sampler": sampler,
            "collate_fn": functools.partial(pad_collate, pad_id=self.pad_id),
            "num_workers": self.hparams.num_workers,
            "persistent_workers": self.hparams.num_workers > 0,
            "pin_memory": self.hparams.pin_memory,
            # its own generator: starting an epoch must not draw from the global RNG (dropout's)
            "generator": torch.Generator().manual_seed(self.hparams.seed),
        }
        if train:
            return self._resumable(data, **kwargs)
        return DataLoader(data, **kwargs)

    # Evaluation order (validation and test) is a fixed (seeded, never re-shuffled: a plain loader
    # never moves to another epoch) permutation, not file order: IMDB's test split is stored
    # negatives first, so limit_test_batches would otherwise see one class.
    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size, train=False)
