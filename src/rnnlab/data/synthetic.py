"""Synthetic long-range memory tasks, generated in memory: where the vanishing gradient decides
whether a cell learns at all.

- adding (Hochreiter & Schmidhuber 1997; Le et al. 2015): two channels per step, a value in
  [0, 1] and a 0/1 marker set at two steps, one in each half of the sequence; the target is
  the sum of the two marked values. Always answering 1.0 scores an MSE of 1/6 ~ 0.167.
- copy (Arjovsky et al. 2016): `copy_len` symbols from an alphabet, `delay` blanks, a
  delimiter, then `copy_len` blank steps at which the model must give back the symbols in order.
  Guessing scores a cross-entropy of log(alphabet) on those steps.
- selective copying (Gu & Dao 2023): the symbols sit at random steps among `seq_len` blanks, and
  `copy_len` delimiters ask for them back in order. Guessing scores a recall accuracy of
  1/alphabet.

Train, validation and test are drawn from seeds of their own derived from `seed`. Every batch
holds `lengths` and `labels` as the text data's do, and the inputs under the key the model's
input layer reads: `inputs` (vectors) for adding, `input_ids` (symbol ids) for the others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from rnnlab.data.base import SplitLoaders, check_counts
from rnnlab.data.sampler import BucketBatchSampler
from rnnlab.meta import DataMeta
from rnnlab.models.components.task import IGNORE
from rnnlab.utils.errors import ConfigError, check

SPLITS = ("train", "val", "test")
# copy task ids: 0 pads (never used: all sequences have one length), then blank and delimiter;
# the symbols follow from FIRST_SYMBOL
PAD, BLANK, DELIMITER, FIRST_SYMBOL = 0, 1, 2, 3


class TensorSplit(Dataset):
    """A generated split: tensors with one row per example, batched by indexing all at once."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["lengths"])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(indices)
        return {k: v[index] for k, v in self.tensors.items()}


def _whole_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """`TensorSplit.__getitems__` gives the batch itself: nothing left to collate."""
    return batch


class SyntheticDataModule(SplitLoaders, ABC):
    """Generation and loaders; a task adds `generate` and the facts its model needs (`meta`).

    `tokenizer_json` is accepted and unused: eval.py hands every data module its checkpoint's
    tokenizer, and synthetic data has none.
    """

    def __init__(
        self,
        num_train: int = 20000,
        num_val: int = 1000,
        num_test: int = 1000,
        batch_size: int = 64,
        eval_batch_size: int = 500,
        seed: int = 42,
        tokenizer_json: str | None = None,
    ) -> None:
        super().__init__()
        check_counts(
            num_train=num_train,
            num_val=num_val,
            num_test=num_test,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
        )
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)
        self.splits: dict[str, TensorSplit] = {}

    @abstractmethod
    def generate(self, split: str, n: int, rng: np.random.Generator) -> dict[str, Tensor]:
        """`n` examples of `split` (generated in SPLITS order) as `lengths`, `labels` and inputs."""

    def split_seed(self, split: str) -> np.random.Generator:
        """Each split's own stream, derived from `seed` (a SeedSequence keeps them independent)."""
        return np.random.default_rng([self.hparams.seed, SPLITS.index(split)])

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        sizes = dict(
            zip(SPLITS, (self.hparams.num_train, self.hparams.num_val, self.hparams.num_test))
        )
        for split in SPLITS:
            self.splits[split] = TensorSplit(
                self.generate(split, sizes[split], self.split_seed(split))
            )

    def data_meta(self, **facts: Any) -> DataMeta:
        """What the model is built from; `data_config` rebuilds this module (eval.py)."""
        cls = type(self)
        return DataMeta(
            vocab_size=facts.pop("vocab_size", 0),
            pad_id=PAD,
            tokenizer_json="",
            data_config={"_target_": f"{cls.__module__}.{cls.__qualname__}", **dict(self.hparams)},
            **facts,
        )

    def _loader(self, split: str, batch_size: int, train: bool) -> DataLoader:
        if split not in self.splits:
            raise ConfigError(f"data split {split!r} is not set up; call setup() first")
        data = self.splits[split]
        world, rank = self._replicas()
        sampler = BucketBatchSampler(
            [1] * len(data),  # one length for all: the sampler only shuffles and shares out
            batch_size,
            shuffle=train,
            seed=self.hparams.seed,
            num_replicas=world,
            rank=rank,
        )
        kwargs: dict[str, Any] = {"batch_sampler": sampler, "collate_fn": _whole_batch}
        return self._resumable(data, **kwargs) if train else DataLoader(data, **kwargs)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size, train=False)


class AddingDataModule(SyntheticDataModule):
    """The adding task over `seq_len` steps. Batches: `inputs` (B, T, 2) float32 (value,
    marker), `lengths` (B,), `labels` (B,) float32."""

    def __init__(self, seq_len: int = 100, **kwargs: Any) -> None:
        check(
            isinstance(seq_len, int) and seq_len >= 2,
            "data.seq_len",
            seq_len,
            "an integer >= 2 (a marker in each half)",
        )
        super().__init__(**kwargs)
        # the task's own arguments join the base class's
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)

    def generate(self, split: str, n: int, rng: np.random.Generator) -> dict[str, Tensor]:
        length = self.hparams.seq_len
        half = length // 2
        values = rng.random((n, length), dtype=np.float32)
        first = rng.integers(0, half, n)
        second = rng.integers(half, length, n)
        markers = np.zeros((n, length), dtype=np.float32)
        rows = np.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        return {
            "inputs": torch.from_numpy(np.stack([values, markers], axis=-1)),
            "lengths": torch.full((n,), length),
            "labels": torch.from_numpy(values[rows, first] + values[rows, second]),
        }

    @property
    def meta(self) -> DataMeta:
        # always answering 1.0, the target's mean, scores E[(X + Y - 1)^2] = 2 Var(U[0, 1]) = 1/6
        return self.data_meta(input_size=2, span=self.hparams.seq_len, chance=1 / 6)


class SymbolRecallDataModule(SyntheticDataModule, ABC):
    """Tasks that give back `copy_len` symbols of an `alphabet` at the end of the sequence: the
    symbol (0 .. alphabet - 1) labels each answer step, IGNORE every other step.

    No symbol string occurs twice across the splits, so validation and test measure recall of
    sequences never trained on.
    """

    def __init__(self, copy_len: int = 10, alphabet: int = 8, **kwargs: Any) -> None:
        check_counts(copy_len=copy_len)
        check(
            isinstance(alphabet, int) and alphabet >= 2,
            "data.alphabet",
            alphabet,
            "an integer >= 2",
        )
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)
        total = self.hparams.num_train + self.hparams.num_val + self.hparams.num_test
        check(
            alphabet**copy_len >= 2 * total,
            "data.copy_len",
            copy_len,
            f"longer: {alphabet}^copy_len distinct strings must be at least twice the "
            f"{total} examples (train + val + test), so the splits need not share one",
        )
        self._drawn: set[bytes] = set()  # every symbol string drawn so far, across splits

    def _distinct_strings(self, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """(n, k) symbol indices, no row equal to one drawn before (in this split or earlier)."""
        rows: list[np.ndarray] = []
        while len(rows) < n:
            for row in rng.integers(0, self.hparams.alphabet, (n - len(rows), k)):
                key = row.tobytes()
                if key not in self._drawn:
                    self._drawn.add(key)
                    rows.append(row)
        return np.stack(rows)

    @staticmethod
    def _batch(ids: np.ndarray, symbols: np.ndarray) -> dict[str, Tensor]:
        """The split's tensors: the answers are the last `copy_len` steps."""
        n, length = ids.shape
        labels = np.full((n, length), IGNORE, dtype=np.int64)
        labels[:, -symbols.shape[1] :] = symbols
        return {
            "input_ids": torch.from_numpy(ids),
            "lengths": torch.full((n,), length),
            "labels": torch.from_numpy(labels),
        }

    @property
    @abstractmethod
    def span(self) -> int:
        """The steps a recalled symbol must be kept over (the lab's T)."""

    @property
    def meta(self) -> DataMeta:
        names = tuple(f"s{i}" for i in range(self.hparams.alphabet))
        return self.data_meta(
            vocab_size=FIRST_SYMBOL + self.hparams.alphabet,
            label_names=names,
            span=self.span,
            chance=1 / self.hparams.alphabet,  # a guess among the symbols
        )


class CopyDataModule(SymbolRecallDataModule):
    """The copy task: `copy_len` symbols, `delay` blanks, a delimiter, `copy_len` answer steps.
    Batches: `input_ids` (B, 2 * copy_len + delay + 1), `lengths` (B,), `labels` of that shape."""

    def __init__(
        self, delay: int = 20, copy_len: int = 10, alphabet: int = 8, **kwargs: Any
    ) -> None:
        check(isinstance(delay, int) and delay >= 0, "data.delay", delay, "an integer >= 0")
        super().__init__(copy_len=copy_len, alphabet=alphabet, **kwargs)
        # the task's own arguments join the base class's
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)

    def generate(self, split: str, n: int, rng: np.random.Generator) -> dict[str, Tensor]:
        k, delay = self.hparams.copy_len, self.hparams.delay
        symbols = self._distinct_strings(n, k, rng)
        ids = np.full((n, 2 * k + delay + 1), BLANK, dtype=np.int64)
        ids[:, :k] = symbols + FIRST_SYMBOL
        ids[:, k + delay] = DELIMITER
        return self._batch(ids, symbols)

    @property
    def span(self) -> int:
        return self.hparams.delay  # Arjovsky et al.'s T


class SelectiveCopyDataModule(SymbolRecallDataModule):
    """Selective copying (Gu & Dao 2023): `copy_len` symbols at random positions among
    `seq_len` blanks, then `copy_len` delimiter steps at which the symbols come back in order.
    Batches: `input_ids` (B, seq_len + copy_len), `lengths` (B,), `labels` of that shape.
    Unlike copy, where the symbols are is new in every sequence: a cell must decide from the
    input which steps to keep (time-invariant recurrences cannot)."""

    def __init__(
        self, seq_len: int = 256, copy_len: int = 16, alphabet: int = 16, **kwargs: Any
    ) -> None:
        super().__init__(copy_len=copy_len, alphabet=alphabet, **kwargs)
        check(
            isinstance(seq_len, int) and seq_len >= copy_len,
            "data.seq_len",
            seq_len,
            f"an integer >= data.copy_len ({copy_len}): the symbols need a step each",
        )
        # the task's own arguments join the base class's
        self.save_hyperparameters(ignore=["tokenizer_json"], logger=False)

    def generate(self, split: str, n: int, rng: np.random.Generator) -> dict[str, Tensor]:
        k, length = self.hparams.copy_len, self.hparams.seq_len
        symbols = self._distinct_strings(n, k, rng)
        # k distinct steps per row, in order: the first k of a random permutation, sorted
        positions = np.sort(rng.random((n, length)).argsort(axis=1)[:, :k], axis=1)
        ids = np.full((n, length + k), BLANK, dtype=np.int64)
        ids[np.arange(n)[:, None], positions] = symbols + FIRST_SYMBOL
        ids[:, length:] = DELIMITER
        return self._batch(ids, symbols)

    @property
    def span(self) -> int:
        return self.hparams.seq_len
