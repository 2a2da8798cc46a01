"""Attention read-out: a learned weighting of every valid step (Bahdanau et al.'s additive
score), so the summary can draw on any part of a review, not only its last or loudest step.

`weights(outputs, lengths)` gives the (B, T) attention over a review's tokens, to read back
which words the prediction leaned on.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.models.components.readout import Readout, valid_mask
from rnnlab.utils.errors import check


class AttentionReadout(Readout):
    def __init__(
        self, input_size: int, bidirectional: bool = False, attention_size: int = 64
    ) -> None:
        check(
            isinstance(attention_size, int) and attention_size >= 1,
            "model.readout.attention_size",
            attention_size,
            "an integer >= 1",
        )
        super().__init__(input_size, bidirectional)
        self.project = nn.Linear(input_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def scores(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """(B, T) float32 scores, -inf at padded steps."""
        scores = self.score(torch.tanh(self.project(outputs))).squeeze(-1).float()
        return scores.masked_fill(~valid_mask(outputs, lengths).squeeze(-1), -torch.inf)

    def weights(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """(B, T): each row sums to 1 over its valid steps, 0 on padding."""
        return self.scores(outputs, lengths).softmax(dim=1)

    def forward(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        weights = self.weights(outputs, lengths).to(outputs.dtype)
        return torch.einsum("bt,btd->bd", weights, outputs)

    def step(self, outputs: Tensor, chunk_len: Tensor, carry: tuple | None) -> tuple[Tensor, tuple]:
        """An online softmax: a running maximum score, weighted sum and normaliser."""
        scores = self.scores(outputs, chunk_len)
        high = scores.amax(dim=1)
        if carry is not None:
            high = torch.maximum(high, carry[0])
        safe = torch.where(torch.isfinite(high), high, torch.zeros_like(high)).unsqueeze(1)
        exp = (scores - safe).exp()  # 0 at padded steps
        total = torch.einsum("bt,btd->bd", exp, outputs.float())
        norm = exp.sum(dim=1)
        if carry is not None:
            rescale = (carry[0] - safe.squeeze(1)).exp().nan_to_num(0.0)
            total = total + carry[1] * rescale.unsqueeze(1)
            norm = norm + carry[2] * rescale
        summary = total / norm.clamp(min=torch.finfo(norm.dtype).tiny).unsqueeze(1)
        return summary.to(outputs.dtype), (high, total, norm)
