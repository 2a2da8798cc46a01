"""Read-outs: one vector per sequence from the encoder's outputs at its valid steps only.

A read-out works on whole sequences (`forward`) and on a sequence that arrives in chunks
(`step`, truncated BPTT), where `carry` holds what it has seen so far. Both must agree: the
tests check that one chunk as long as the batch gives the full read-out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn


def valid_mask(outputs: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, 1): True at each row's valid steps."""
    steps = torch.arange(outputs.size(1), device=outputs.device)
    return (steps < lengths.to(outputs.device).unsqueeze(1)).unsqueeze(-1)


class Readout(nn.Module, ABC):
    """Built as `readout(input_size=encoder.output_size, bidirectional=...)`. `per_step`: keeps
    a vector per step (B, T, D) for a per-step task, instead of one per sequence."""

    per_step = False

    def __init__(self, input_size: int, bidirectional: bool = False) -> None:
        super().__init__()
        self.input_size = input_size
        self.bidirectional = bidirectional
        self.output_size = input_size

    @abstractmethod
    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, D) right-padded outputs + lengths -> (B, output_size), or (B, T, output_size)
        when per_step."""

    @abstractmethod
    def step(self, outputs: Tensor, chunk_len: Tensor, carry: Any) -> tuple[Tensor, Any]:
        """Fold in one chunk (chunk_len valid steps per row, possibly 0); carry starts as None.
        Returns the summary so far and the new carry (detached by the caller between chunks)."""


class LastReadout(Readout):
    """The state at each sequence's own last token (for a bidirectional encoder, the backward
    direction's last state is at step 0)."""

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        index = (lengths.to(outputs.device) - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
        last = outputs.gather(1, index).squeeze(1)
        if not self.bidirectional:
            return last
        half = outputs.size(-1) // 2
        return torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)

    def step(
        self, outputs: Tensor, chunk_len: Tensor, carry: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        current = self(outputs, chunk_len.clamp(min=1))
        if carry is not None:
            current = torch.where((chunk_len > 0).to(outputs.device).unsqueeze(1), current, carry)
        return current, current


class MeanReadout(Readout):
    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        total = (outputs * valid_mask(outputs, lengths)).sum(1)
        return total / lengths.to(outputs.device).unsqueeze(1).to(outputs.dtype)

    def step(self, outputs: Tensor, chunk_len: Tensor, carry: Any) -> tuple[Tensor, Any]:
        total = (outputs * valid_mask(outputs, chunk_len)).sum(1)
        count = chunk_len.to(outputs.device)
        if carry is not None:
            total, count = total + carry[0], count + carry[1]
        return total / count.clamp(min=1).unsqueeze(1).to(total.dtype), (total, count)


class MaxReadout(Readout):
    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        lowest = torch.finfo(outputs.dtype).min
        return outputs.masked_fill(~valid_mask(outputs, lengths), lowest).amax(1)

    def step(
        self, outputs: Tensor, chunk_len: Tensor, carry: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        current = self(outputs, chunk_len)  # a row with no valid step gives the lowest float
        if carry is not None:
            current = torch.maximum(current, carry)
        return current, current


class ConcatReadout(Readout):
    """[last, max, mean] side by side (ULMFiT's concat pooling): three times the features."""

    def __init__(self, input_size: int, bidirectional: bool = False) -> None:
        super().__init__(input_size, bidirectional)
        self.parts = nn.ModuleList(
            kind(input_size, bidirectional) for kind in (LastReadout, MaxReadout, MeanReadout)
        )
        self.output_size = sum(part.output_size for part in self.parts)

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        return torch.cat([part(outputs, lengths) for part in self.parts], dim=-1)

    def step(self, outputs: Tensor, chunk_len: Tensor, carry: Any) -> tuple[Tensor, Any]:
        carries = carry if carry is not None else (None,) * len(self.parts)
        results = [part.step(outputs, chunk_len, c) for part, c in zip(self.parts, carries)]
        return torch.cat([r[0] for r in results], dim=-1), tuple(r[1] for r in results)


class StepReadout(Readout):
    """Every step's output as it is: a prediction per step (many-to-many, the copy task)."""

    per_step = True

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        return outputs

    def step(self, outputs: Tensor, chunk_len: Tensor, carry: Any) -> tuple[Tensor, Any]:
        return outputs, None  # nothing to carry: each step stands for itself
