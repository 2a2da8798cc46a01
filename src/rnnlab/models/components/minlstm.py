"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates read only the
input, normalised so that the two add up to one, run as a parallel scan like minGRU.

    f_t = sigmoid(W_f x_t + b_f),  i_t = sigmoid(W_i x_t + b_i),  h~_t = g(W_h x_t + b_h)
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t h_{t-1} + i'_t h~_t

with g minGRU's positive activation. In log space, with d = softplus(-k_f) - softplus(-k_i):
log f' = -softplus(d), log i' = -softplus(-d). `mode=parallel` runs the log-space scan of
`mingru.py` in chunks of `chunk_size` steps, `mode=blocked` the blocked scan of `scan.py`,
`mode=sequential` the step-by-step loop: same outputs, state and gradients. The state is each
row's at its own last real step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.models.components.mingru import (
    MinGRUEncoder,
    ScanLayer,
    at_lengths,
    chunked,
    g,
    log_g,
    log_space_scan,
)
from rnnlab.models.components.scan import linear_scan


class MinLSTMLayer(ScanLayer):
    """One layer, one direction: the three projections [W_f; W_i; W_h] for every step, then the
    scan."""

    projections = 3

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) [+ h_0 (B, H)] -> outputs h_1..h_T (B, T, H) and the state."""
        k_f, k_i, v = self.inputs(x).chunk(3, dim=-1)
        if self.mode == "parallel":
            d = F.softplus(-k_f) - F.softplus(-k_i)
            log_b = -F.softplus(-d) + log_g(v)
            h = chunked(log_space_scan, -F.softplus(d), log_b, state, self.chunk_size)
        else:
            f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
            total = f + i
            h = linear_scan(self.mode, f / total, i / total * g(v), state, self.block_size)
        return h, at_lengths(h, self.lengths)


class MinLSTMEncoder(MinGRUEncoder):
    """`mode`: parallel (the log-space scan) | blocked | sequential; `chunk_size`: steps per
    log-space scan; `block_size`: steps per block of the blocked scan."""

    layer_class = MinLSTMLayer
