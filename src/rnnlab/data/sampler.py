"""Length-bucketed, rank-aware batch sampler: little padding, exact coverage, equal batch counts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffle, sort within pools of `pool_factor` batches by length, cut, shuffle the batches.

    Every rank gets the same number of batches and every example is drawn exactly once per
    epoch across ranks: when the batch count does not divide by the world size, the largest
    batches are halved instead of repeating examples. `batch_size` is per rank (per device).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_factor: int = 50,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        if num_replicas is None:
            num_replicas = (
                dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
            )
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if len(lengths) < num_replicas:
            raise ValueError(f"{len(lengths)} examples cannot be shared by {num_replicas} ranks")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_size = batch_size * pool_factor
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """`start` skips this rank's first batches of the epoch once: a run resumed mid-epoch."""
        self.epoch = epoch
        self.start = start

    def _pool_batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        batches = []
        for start in range(0, n, self.pool_size):
            pool = order[start : start + self.pool_size]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches.extend(np.split(pool, range(self.batch_size, len(pool), self.batch_size)))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def global_batches(self) -> list[np.ndarray]:
        """All ranks' batches for this epoch, in step order (rank r takes every r-th)."""
        batches = self._pool_batches()
        while len(batches) % self.num_replicas:
            i = max(range(len(batches)), key=lambda j: len(batches[j]))
            big = batches.pop(i)
            batches[i:i] = np.array_split(big, 2)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start = self.start, 0
        for batch in self.global_batches()[self.rank :: self.num_replicas][start:]:
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.pool_size)
        count = full * math.ceil(self.pool_size / self.batch_size) + math.ceil(
            rest / self.batch_size
        )
        return math.ceil(count / self.num_replicas)


class ResumableDataLoader(DataLoader):
    """Each pass (`iter()`) is the next epoch (0, 1, 2, ...): it sets its batch sampler's epoch
    itself, so a new shuffle needs no hook in the model. Its place in the epoch travels in every
    checkpoint (Lightning saves `state_dict()`); `load_state_dict` makes the next pass continue
    that epoch with the very next batch, in the same shuffled order, even one whose `iter()` was
    already called but that has not yet given a batch (the epoch is fixed at its first batch).

    Lightning fetches sized loaders without prefetching, so the batches counted here are the
    batches trained on. `limit_batches` is the trainer's `limit_train_batches` (an epoch may end
    early), so a checkpoint saved at an epoch's end resumes at the start of the next.
    `first_epoch` is where the first `iter()` begins: a loader built again in a later epoch, or
    for a run resumed from a checkpoint that holds no loader state.
    """

    def __init__(
        self,
        *args: Any,
        first_epoch: int = 0,
        limit_batches: int | float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.first_epoch, self.limit_batches = first_epoch, limit_batches
        self._epoch, self._taken = first_epoch, 0  # the epoch under way, its batches taken so far
        self._next = (first_epoch, 0)  # where the next iter() starts

    @classmethod
    def for_trainer(cls, trainer: Any, dataset: Any, **kwargs: Any) -> ResumableDataLoader:
        """The training loader of a data module attached to `trainer` (or to none): it starts at
        the trainer's epoch and takes as many batches an epoch as the trainer does."""
        if trainer is None:
            return cls(dataset, **kwargs)
        return cls(
            dataset,
            first_epoch=trainer.current_epoch,
            limit_batches=trainer.limit_train_batches,
            **kwargs,
        )

    def epoch_length(self) -> int:
        """The batches an epoch takes: all, or Lightning's `limit_train_batches` of them."""
        limit = self.limit_batches
        return min(len(self), limit) if isinstance(limit, int) else int(len(self) * limit)

    def __iter__(self) -> Iterator:
        # A generator: the epoch and its first batch are fixed at the first batch, not at iter().
        # Lightning calls iter() in `setup_data`, which `estimated_stepping_batches` (OneCycle)
        # runs before a resumed run's state is loaded (at `on_train_start`), and a resumed run
        # trains on that very iterator; fixed at iter(), it would replay epoch 0 from its start.
        epoch, start = self._next
        if start and start >= self.epoch_length():  # saved at the epoch's end: begin the next one
            epoch, start = epoch + 1, 0
        self._epoch, self._taken = epoch, start
        self._next = (epoch + 1, 0)
        self.batch_sampler.set_epoch(epoch, start=start)
        for batch in super().__iter__():
            self._taken += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batches": self._taken}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch, self._taken = state["epoch"], state["batches"]
        self._next = (state["epoch"], state["batches"])
