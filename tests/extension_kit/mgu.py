"""A minimal gated unit (Zhou et al. 2016), written as a researcher new to rnnlab would: one
forget gate decides both how much of the old state to keep and what the candidate reads.

    f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
    c_t = tanh(W_c x_t + U_c (f_t * h_{t-1}) + b_c)
    h_t = (1 - f_t) * h_{t-1} + f_t * c_t
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import StackedEncoder
from rnnlab.models.components.init import RecurrentWeights


class MGULayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(2 * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        nn.init.uniform_(self.weight_ih, -bound, bound)
        nn.init.uniform_(self.weight_hh, -bound, bound)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        hidden = self.weight_hh.size(1)
        h = x.new_zeros(x.size(0), hidden) if state is None else state
        driven = torch.addmm(self.bias, x.flatten(0, 1), self.weight_ih.t())
        driven = driven.view(x.size(0), x.size(1), 2 * hidden)
        u_f, u_c = self.weight_hh.split(hidden)
        outputs = []
        for t in range(x.size(1)):
            x_f, x_c = driven[:, t].split(hidden, dim=-1)
            f = torch.sigmoid(x_f + h @ u_f.t())
            c = torch.tanh(x_c + (f * h) @ u_c.t())
            h = (1 - f) * h + f * c
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class MGUEncoder(StackedEncoder):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(MGULayer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def layer_weights(self, layer: nn.Module) -> RecurrentWeights:
        return RecurrentWeights(layer.weight_hh, layer.weight_ih, [layer.bias])
