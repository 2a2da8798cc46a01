"""The independently recurrent network (Li et al. 2018, IndRNN): each unit reads only its own
past, through one recurrent weight per unit.

    h_t = relu(W x_t + u * h_{t-1} + b),   u a vector

u starts uniform in [0, 1] (the paper's default) and, with `recurrent_max` set, is clipped to
[-recurrent_max, recurrent_max] where the recurrence reads it: u^T then stays at most
recurrent_max^T, and the paper's 2^(1/T) for sequences of T steps keeps a unit's gradient over
the whole sequence below 2x (e.g. 1.00173 for IMDB's 400 tokens). The relu makes the recurrence
nonlinear, so it runs step by step (W x + b for every step at once first).

Its recurrent weight is a vector, not a matrix: it reports no `recurrent_weights()`, trains with
`model/init=default`, and `model/init=orthogonal|identity` refuse it in one line. The state is
each row's at its own last real step.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import StackedEncoder, State
from rnnlab.models.components.mingru import at_lengths, lengths_known
from rnnlab.utils.errors import check


class IndRNNLayer(nn.Module):
    """One layer, one direction, one time step at a time."""

    lengths: Tensor | None = None

    def __init__(
        self, input_size: int, hidden_size: int, recurrent_max: float | None = None
    ) -> None:
        super().__init__()
        self.inputs = nn.Linear(input_size, hidden_size)  # W and b, nn.Linear's init
        self.u = nn.Parameter(torch.rand(hidden_size))  # U(0, 1)
        self.recurrent_max = recurrent_max

    def recurrent_weight(self) -> Tensor:
        if self.recurrent_max is None:
            return self.u
        return self.u.clamp(-self.recurrent_max, self.recurrent_max)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) [+ h_0 (B, H)] -> outputs h_1..h_T (B, T, H) and the state."""
        u = self.recurrent_weight()
        h = x.new_zeros(x.size(0), u.numel()) if state is None else state
        outputs = []
        for driven in self.inputs(x).unbind(1):
            h = torch.relu(torch.addcmul(driven, u, h))
            outputs.append(h)
        h_all = torch.stack(outputs, dim=1)
        return h_all, at_lengths(h_all, self.lengths)


class IndRNNEncoder(StackedEncoder):
    """`recurrent_max`: clip |u| to it (null: no clipping; the paper: 2^(1/T))."""

    state_at_length = True  # the state is each row's at its own last real step

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        recurrent_max: float | None = None,
    ) -> None:
        check(
            recurrent_max is None or recurrent_max > 0,
            "model.encoder.recurrent_max",
            recurrent_max,
            "null or a number > 0",
        )
        layer = functools.partial(IndRNNLayer, recurrent_max=recurrent_max)
        super().__init__(layer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def forward(self, x: Tensor, lengths: Tensor, state: State = None) -> tuple[Tensor, State]:
        with lengths_known(self, lengths):
            return super().forward(x, lengths, state)
