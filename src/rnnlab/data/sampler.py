"""Length-bucketed, rank-aware batch sampler: little padding, exact coverage, equal batch counts."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler


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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

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
        for batch in self.global_batches()[self.rank :: self.num_replicas]:
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        full, rest = divmod(n, self.pool_size)
        count = full * math.ceil(self.pool_size / self.batch_size) + math.ceil(
            rest / self.batch_size
        )
        return math.ceil(count / self.num_replicas)
