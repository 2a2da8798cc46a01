"""Texts as one token stream for language modelling, batched for stateful truncated BPTT.

Texts (never the test split) are joined into one stream with `<eos>` after each, laid out as
`batch_size` parallel streams and cut into chunks of `tbptt_steps` tokens: row b of batch i+1
continues row b of batch i, so the model can carry its hidden state from one batch to the next.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from rnnlab.data.base import TextDataModule, check_counts
from rnnlab.data.cache import load_or_rebuild
from rnnlab.data.loading import (
    classifier_split,
    load_source,
    source_fingerprint,
    source_slug,
    text_splits,
)
from rnnlab.data.tokenizer import EOS, KINDS
from rnnlab.utils.errors import ConfigError, check, check_choice

log = logging.getLogger(__name__)

CACHE_FORMAT = 3
TEXT_SPLITS = ("unsupervised", "train")  # never "test": the classifier is scored on it


def encode_stream(texts: Sequence[str], tokenizer: Tokenizer, batch_size: int = 1000) -> np.ndarray:
    """Every review's ids followed by `<eos>`, all concatenated into one int32 array."""
    eos = tokenizer.token_to_id(EOS)
    parts = []
    for start in range(0, len(texts), batch_size):
        for encoding in tokenizer.encode_batch(list(texts[start : start + batch_size])):
            parts.append(np.asarray([*encoding.ids, eos], dtype=np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def stream_grid(stream: np.ndarray, num_streams: int, pad_id: int) -> Tensor:
    """(num_streams, L + 1): row s holds tokens s*L .. s*L + L of the stream.

    Neighbouring rows share one token (a row's last target is the next row's first input), so
    every token but the first is a target exactly once; the tail is padded with `pad_id`,
    whose targets the model ignores.
    """
    length = max(1, math.ceil((len(stream) - 1) / num_streams))
    padded = np.full(num_streams * length + 1, pad_id, dtype=np.int64)
    padded[: len(stream)] = stream
    return torch.from_numpy(padded).as_strided((num_streams, length + 1), (length, 1)).clone()


class StreamChunks(Dataset):
    """Item i is chunk i of every row: `input_ids`, `targets` (the next tokens), `lengths`
    (real targets per row: what throughput counts), each (B, <= steps)."""

    def __init__(self, grid: Tensor, steps: int, pad_id: int) -> None:
        self.grid, self.steps, self.pad_id = grid, steps, pad_id

    @classmethod
    def layout(
        cls,
        stream: np.ndarray,
        batch_size: int,
        steps: int,
        pad_id: int,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> StreamChunks:
        """Under DDP each rank takes its own contiguous block of `batch_size` rows; all rows have
        the same length, so every rank has the same number of batches."""
        grid = stream_grid(stream, batch_size * num_replicas, pad_id)
        return cls(grid[rank * batch_size : (rank + 1) * batch_size], steps, pad_id)

    def __len__(self) -> int:
        return math.ceil((self.grid.size(1) - 1) / self.steps)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.steps
        end = min(start + self.steps, self.grid.size(1) - 1)
        targets = self.grid[:, start + 1 : end + 1]
        return {
            "input_ids": self.grid[:, start:end],
            "targets": targets,
            "lengths": (targets != self.pad_id).sum(1),
        }


class ChunkSampler(Sampler[list[int]]):
    """Chunks in stream order (the carried state depends on it); the interface of
    `BucketBatchSampler` that `ResumableDataLoader` uses to resume mid-epoch."""

    def __init__(self, num_chunks: int) -> None:
        self.num_chunks = num_chunks
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __iter__(self):
        start, self.start = self.start, 0
        for i in range(start, self.num_chunks):
            yield [i]

    def __len__(self) -> int:
        return self.num_chunks


def _single(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return items[0]


class LanguageModelDataModule(TextDataModule):
    """The texts of `splits` (IMDB: unsupervised + train); a seeded `val_fraction` of them is
    held out for perplexity.

    `classifier_val_fraction`: the classifier's validation rows (its `data.val_fraction` split
    of train, same seed) are left out, or the fine-tuned classifier would pick its best
    checkpoint on texts the LM has read. null reads all of train.

    `test_split`: the split whose texts give the test perplexity (read after training, never
    trained on, tokenized with the training texts' vocabulary); null: no test stream.

    The tokenizer (with `<eos>`) is trained on the LM's training texts, unless `tokenizer_json`
    gives one (eval from a checkpoint); the classifier fine-tuned from the LM reuses it from the
    LM checkpoint.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        cache_dir: str = ".cache",
        vocab_size: int = 20000,
        tokenizer: str = "wordlevel",
        splits: Sequence[str] = TEXT_SPLITS,
        val_fraction: float = 0.02,
        classifier_val_fraction: float | None = 0.1,
        test_split: str | None = "test",
        batch_size: int = 64,
        eval_batch_size: int = 64,
        tbptt_steps: int = 70,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 42,
        tokenizer_json: str | None = None,
    ) -> None:
        super().__init__()
        check(
            isinstance(vocab_size, int) and vocab_size > 3,
            "data.vocab_size",
            vocab_size,
            "an integer > 3",
        )
        check_choice("data.tokenizer", tokenizer, KINDS)
        splits = list(splits)  # a plain list in the checkpoint (weights_only loading)
        check(
            bool(splits) and "test" not in splits and len(set(splits)) == len(splits),
            "data.splits",
            splits,
            "distinct split names, never test (the classifier is scored on it)",
        )
        check(
            test_split is None or test_split not in splits,
            "data.test_split",
            test_split,
            f"null or a split not trained on (data.splits={splits})",
        )
        check(0 < val_fraction < 1, "data.val_fraction", val_fraction, "a number in (0, 1)")
        check(
            isinstance(num_workers, int) and num_workers >= 0,
            "data.num_workers",
            num_workers,
            "an integer >= 0",
        )
        check(
            classifier_val_fraction is None or 0 < classifier_val_fraction < 1,
            "data.classifier_val_fraction",
            classifier_val_fraction,
            "null or a number in (0, 1): the classifier's data.val_fraction",
        )
        check_counts(
            batch_size=batch_size, eval_batch_size=eval_batch_size, tbptt_steps=tbptt_steps
        )
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)
        self.tokenizer_json = tokenizer_json
        self.streams: dict[str, np.ndarray] = {}

    def _cache_prefix(self) -> str:
        return f"{source_slug(self.hparams.path, self.hparams.name)}-lm"

    def _cache_key(self) -> dict[str, Any]:
        hp = self.hparams
        excluding = "train" in hp.splits and hp.classifier_val_fraction
        return {
            "format": CACHE_FORMAT,
            "source": source_fingerprint(hp.path),
            "name": hp.name,
            "text_column": hp.text_column,
            "label_column": hp.label_column if excluding else None,
            "vocab_size": hp.vocab_size,
            "tokenizer": hp.tokenizer,
            "splits": hp.splits,
            "val_fraction": hp.val_fraction,
            "classifier_val_fraction": hp.classifier_val_fraction,
            "test_split": hp.test_split,
            "seed": hp.seed,
        }

    def prepare_data(self) -> None:
        if (self.cache_path / "meta.json").is_file():
            return
        hp = self.hparams
        raw = load_source(hp.path, hp.name)
        found, _ = text_splits(raw, dict.fromkeys(hp.splits, "data.splits"), hp.text_column)
        if "train" in hp.splits and hp.classifier_val_fraction:
            labelled, _ = text_splits(
                raw, {"train": "data.splits"}, hp.text_column, hp.label_column
            )
            found["train"], _ = classifier_split(
                labelled["train"], hp.classifier_val_fraction, hp.seed
            )
        texts = [text for split in hp.splits for text in found[split]["text"]]
        order = np.random.default_rng(hp.seed).permutation(len(texts))
        n_val = max(1, round(len(texts) * hp.val_fraction))
        check(n_val < len(texts), "data.val_fraction", hp.val_fraction, "leaves no training text")
        streams = {
            name: [texts[i] for i in part]
            for name, part in (("train", order[n_val:]), ("val", order[:n_val]))
        }
        if hp.test_split:
            tested, _ = text_splits(raw, {hp.test_split: "data.test_split"}, hp.text_column)
            streams["test"] = list(tested[hp.test_split]["text"])
        tokenizer = self._tokenizer(
            iter(streams["train"]), f"{len(streams['train'])} texts", extra=(EOS,)
        )
        if tokenizer.token_to_id(EOS) is None:
            raise ConfigError(
                f"data.tokenizer_json: the given tokenizer has no {EOS} token; "
                "a language model's tokenizer is required"
            )
        meta: dict[str, Any] = {"source": hp.path, "name": hp.name, "label_names": [], "sizes": {}}
        with self._building_cache(tokenizer, meta) as tmp:
            for name, part in streams.items():
                log.info("Encoding %d %s texts into one stream", len(part), name)
                stream = encode_stream(part, tokenizer)
                np.save(tmp / f"{name}.npy", stream)
                meta["sizes"][name] = {"texts": len(part), "tokens": len(stream)}

    def setup(self, stage: str | None = None) -> None:
        if not self.streams:
            load_or_rebuild(self.cache_path, self.prepare_data, self._load_cache)

    def _load_cache(self) -> None:
        meta = self._read_cache_meta()
        streams = {name: np.load(self.cache_path / f"{name}.npy") for name in meta["sizes"]}
        for name, stream in streams.items():
            if len(stream) != meta["sizes"][name]["tokens"]:
                raise ValueError(f"{name}: {len(stream)} tokens, meta.json says otherwise")
        self.label_names = ()
        self.streams = streams

    def test_dataloader(self) -> DataLoader:
        if self.streams and "test" not in self.streams:
            raise ConfigError(
                "data.test_split=None: this language model has no test texts; "
                "set data.test_split=<a split it was not trained on>"
            )
        return self._loader("test", self.hparams.eval_batch_size, train=False)

    def _loader(self, name: str, batch_size: int, train: bool) -> DataLoader:
        if name not in self.streams:
            raise ConfigError(f"data stream {name!r} is not set up; call setup() first")
        world, rank = self._replicas()
        chunks = StreamChunks.layout(
            self.streams[name],
            batch_size,
            self.hparams.tbptt_steps,
            self.pad_id,
            num_replicas=world or 1,
            rank=rank or 0,
        )
        kwargs = {
            "batch_sampler": ChunkSampler(len(chunks)),
            "collate_fn": _single,
            "num_workers": self.hparams.num_workers,
            "persistent_workers": self.hparams.num_workers > 0,
            "pin_memory": self.hparams.pin_memory,
        }
        if train:
            return self._resumable(chunks, **kwargs)
        return DataLoader(chunks, **kwargs)
