"""The vanilla (Elman) recurrence, written out: h_t = f(W_h h_{t-1} + W_x x_t + b_h).

A hand-written cell is the way to study a variant nn.RNN does not offer (another update rule,
a gate of your own, a different nonlinearity). This file and `conf/model/elman.yaml` are all it
takes; it computes what nn.RNN computes with one bias (the tests check outputs and gradients).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import NONLINEARITIES, StackedEncoder
from rnnlab.models.components.init import RecurrentWeights
from rnnlab.utils.errors import check_choice


class ElmanLayer(nn.Module):
    """One layer, one direction, one time step at a time."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.weight_x = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_h = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.f = torch.tanh if nonlinearity == "tanh" else torch.relu
        bound = 1 / math.sqrt(hidden_size)  # nn.RNN's default initialisation
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) [+ h_0 (B, H)] -> outputs (B, T, H) and h_T."""
        h = x.new_zeros(x.size(0), self.weight_h.size(0)) if state is None else state
        # W_x x_t + b_h for every step at once: only the W_h h_{t-1} part must wait for h
        driven = torch.addmm(self.bias, x.flatten(0, 1), self.weight_x.t()).view(
            x.size(0), -1, h.size(1)
        )
        outputs = []
        # unbind, not driven[:, t]: each indexed step's backward would fill a (B, T, H) gradient
        for driven_t in driven.unbind(1):
            h = self.f(driven_t + h @ self.weight_h.t())
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class ElmanEncoder(StackedEncoder):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
    ) -> None:
        check_choice("model.encoder.nonlinearity", nonlinearity, NONLINEARITIES)
        layer = functools.partial(ElmanLayer, nonlinearity=nonlinearity)
        super().__init__(layer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def layer_weights(self, layer: nn.Module) -> RecurrentWeights:
        return RecurrentWeights(layer.weight_h, layer.weight_x, [layer.bias])
