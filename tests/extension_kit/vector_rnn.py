"""An IndRNN-style cell (Li et al. 2018): each unit keeps only its own past, so the recurrent
weight is a vector u, not a matrix.

    h_t = relu(W x_t + u * h_{t-1} + b)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import StackedEncoder


class VectorLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input = nn.Linear(input_size, hidden_size)
        self.u = nn.Parameter(torch.rand(hidden_size))  # in [0, 1): no unit explodes at the start

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        driven = self.input(x)
        h = driven.new_zeros(driven.size(0), driven.size(2)) if state is None else state
        outputs = []
        for t in range(x.size(1)):
            h = torch.relu(driven[:, t] + self.u * h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class VectorRNNEncoder(StackedEncoder):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(VectorLayer, input_size, hidden_size, num_layers, bidirectional, dropout)
