"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate and candidate read
only the input, so the recurrence is linear in h and runs as a parallel scan.

    z_t = sigmoid(W_z x_t + b_z),  h~_t = g(W_h x_t + b_h),  h_t = (1 - z_t) h_{t-1} + z_t h~_t

with the paper's log-space g(v) = v + 0.5 for v >= 0, sigmoid(v) otherwise (always positive).
`mode=parallel` runs h_t = a_t h_{t-1} + b_t as the log-space ("Heinsen") scan,
log h = a* + logcumsumexp(log b - a*) with a* = cumsum(log a), in chunks of `chunk_size` steps
(the state carried from chunk to chunk keeps a* bounded); `mode=blocked` runs it as the blocked
scan of `scan.py` (blocks of `block_size` steps); `mode=sequential` runs it step by step. All
three give the same outputs, state and gradients (tests/models/test_scan_cells.py). On a CPU the
log-space scan is the slowest of the three (docs/models.md); it pays off where the time steps
run in parallel (a GPU).

The state after a batch is each row's state at its own last real step (`lengths`), in every mode.
`minlstm.py` reuses the scan.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.components.encoder import StackedEncoder, State
from rnnlab.models.components.scan import check_scan_options, linear_scan


def g(v: Tensor) -> Tensor:
    """The paper's positive activation for the candidate: v + 0.5 (v >= 0), sigmoid(v) (v < 0)."""
    return torch.where(v >= 0, v.clamp(min=0) + 0.5, torch.sigmoid(v.clamp(max=0)))


def log_g(v: Tensor) -> Tensor:
    """log g(v), without forming g(v) for the negative side (-softplus(-v) = log sigmoid(v))."""
    return torch.where(v >= 0, (v.clamp(min=0) + 0.5).log(), -F.softplus(-v.clamp(max=0)))


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor | None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for t = 1..T along dim 1, from log a and log b (B, T, H), b > 0.

    h_t = exp(a*_t + logcumsumexp(log b - a*)_t) + exp(a*_t) h_0: the initial state enters as its
    own term, so it may have any sign (a state given from outside, not only one this cell made).
    """
    a_star = log_a.cumsum(dim=1)
    h = (a_star + torch.logcumsumexp(log_b - a_star, dim=1)).exp()
    return h if h0 is None else h + a_star.exp() * h0.unsqueeze(1)


def chunked(scan, log_a: Tensor, log_b: Tensor, h0: Tensor | None, chunk_size: int) -> Tensor:
    """Run a log-space scan chunk by chunk, the state at each chunk's end starting the next."""
    parts = []
    for part_a, part_b in zip(log_a.split(chunk_size, 1), log_b.split(chunk_size, 1)):
        parts.append(scan(part_a, part_b, h0))
        h0 = parts[-1][:, -1]
    return torch.cat(parts, dim=1)


def at_lengths(h: Tensor, lengths: Tensor | None) -> Tensor:
    """(B, T, H) -> each row's h at its last real step (the last step when lengths is None), as
    a tensor of its own (not a view: torch.compile would guard on a view's base)."""
    steps = h.size(1)
    if lengths is None:
        last = torch.full((h.size(0),), steps - 1, device=h.device)
    else:
        last = (lengths.to(h.device) - 1).clamp(0, steps - 1)
    return h[torch.arange(h.size(0), device=h.device), last]


@contextlib.contextmanager
def lengths_known(encoder: StackedEncoder, lengths: Tensor) -> Iterator[None]:
    """StackedEncoder calls a layer as layer(x, state): tell the layers the batch's lengths for
    the call, so each returns the state at each row's last real step."""
    layers = [*encoder.forward_layers, *(encoder.backward_layers or ())]
    for layer in layers:
        layer.lengths = lengths
    try:
        yield
    finally:
        for layer in layers:
            layer.lengths = None


class ScanLayer(nn.Module):
    """A layer whose gates read only the input: `projections` input projections of
    `hidden_size` each, for every step at once (one nn.Linear, its own init), then a scan."""

    lengths: Tensor | None = None
    projections: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "sequential",
        chunk_size: int = 256,
        block_size: int = 32,
    ) -> None:
        super().__init__()
        self.hidden_size, self.mode = hidden_size, mode
        self.chunk_size, self.block_size = chunk_size, block_size
        self.inputs = nn.Linear(input_size, self.projections * hidden_size)


class MinGRULayer(ScanLayer):
    """One layer, one direction: both projections [W_z; W_h] for every step, then the scan."""

    projections = 2

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) [+ h_0 (B, H)] -> outputs h_1..h_T (B, T, H) and the state."""
        k, v = self.inputs(x).chunk(2, dim=-1)
        if self.mode == "parallel":
            # log z = -softplus(-k), log(1 - z) = -softplus(k)
            log_b = -F.softplus(-k) + log_g(v)
            h = chunked(log_space_scan, -F.softplus(k), log_b, state, self.chunk_size)
        else:
            z = torch.sigmoid(k)
            h = linear_scan(self.mode, 1 - z, z * g(v), state, self.block_size)
        return h, at_lengths(h, self.lengths)


class MinGRUEncoder(StackedEncoder):
    """`mode`: parallel (the log-space scan) | blocked | sequential; `chunk_size`: steps per
    log-space scan; `block_size`: steps per block of the blocked scan. `layer_class`: the layer
    it stacks (minLSTM's encoder is this one with its own layer)."""

    layer_class: type[nn.Module] = MinGRULayer
    state_at_length = True  # the state is each row's at its own last real step

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        mode: str = "sequential",
        chunk_size: int = 256,
        block_size: int = 32,
    ) -> None:
        check_scan_options(mode, chunk_size, block_size)
        layer = functools.partial(
            self.layer_class, mode=mode, chunk_size=chunk_size, block_size=block_size
        )
        super().__init__(layer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def forward(self, x: Tensor, lengths: Tensor, state: State = None) -> tuple[Tensor, State]:
        with lengths_known(self, lengths):
            return super().forward(x, lengths, state)
