"""The sum of a sequence's outputs over its valid steps: a read-out that keeps how much was
seen, not only what."""

from __future__ import annotations

from torch import Tensor

from rnnlab.models.components.readout import Readout, valid_mask


class SumReadout(Readout):
    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        return (outputs * valid_mask(outputs, lengths)).sum(dim=1)

    def step(
        self, outputs: Tensor, chunk_len: Tensor, carry: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        total = self(outputs, chunk_len)
        total = total if carry is None else carry + total
        return total, total
