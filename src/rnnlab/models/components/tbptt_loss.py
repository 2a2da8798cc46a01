"""Which chunks of truncated BPTT carry a loss, and how each row of a chunk counts.

Truncated BPTT splits a sequence into chunks of `model.tbptt_steps` steps and steps the
optimizer once per chunk. A one-label-per-sequence task can put its loss at every chunk's end
(the label predicted from what has been read so far) or only at the last one. Each rule is a
component (conf/model/tbptt_loss/); a new one subclasses `ChunkLoss` in its own module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


class ChunkLoss(ABC):
    @abstractmethod
    def has_loss(self, chunk: int, chunks: int) -> bool:
        """Whether chunk `chunk` (0-based) of `chunks` gets a loss (and a backward pass)."""

    @abstractmethod
    def row_weights(self, running: Tensor) -> Tensor:
        """`running` (B,) marks the sequences that still have steps in this chunk -> the weight
        of each row in the chunk's mean loss."""


class EveryChunk(ChunkLoss):
    """A loss at each chunk's end, over the sequences still running in it."""

    def has_loss(self, chunk: int, chunks: int) -> bool:
        return True

    def row_weights(self, running: Tensor) -> Tensor:
        return running.float()


class LastChunk(ChunkLoss):
    """A loss at the final chunk only (every row: the finished sequences included); earlier
    chunks only carry the state forward."""

    def has_loss(self, chunk: int, chunks: int) -> bool:
        return chunk == chunks - 1

    def row_weights(self, running: Tensor) -> Tensor:
        return torch.ones_like(running, dtype=torch.float)
