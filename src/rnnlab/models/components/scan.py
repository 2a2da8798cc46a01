"""The linear recurrence h_t = a_t h_{t-1} + b_t over (B, T, H) tensors, two ways: step by step,
and as a blocked scan. minGRU, minLSTM and the LRU share them; a is either (B, T, H) (a gate
per step) or (H,) (the LRU's lambda, the same at every step); a, b and h_0 may be complex and of
any sign.

The blocked scan cuts the T steps into blocks of `block_size`. It runs the loop over the steps
of a block for every block at once (from a zero state), then carries the state from block to
block, and adds each block's entering state times the product of a so far. That is
block_size + T / block_size steps in Python instead of T (64 at T = 1,024 and blocks of 32), for
about three times the arithmetic: it wins where per-step overhead, not arithmetic, bounds the loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.utils.errors import check, check_choice


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
    """h_1..h_T step by step (unbind/stack: each step's backward touches one step)."""
    h = b.new_zeros(b.size(0), b.size(2)) if h0 is None else h0
    a_steps = a.unbind(1) if a.dim() == 3 else [a] * b.size(1)
    outputs = []
    for a_t, b_t in zip(a_steps, b.unbind(1)):
        h = torch.addcmul(b_t, a_t, h)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def blocked_scan(a: Tensor, b: Tensor, h0: Tensor | None, block_size: int) -> Tensor:
    """h_1..h_T as a blocked scan: the same values as `sequential_scan`, in fewer Python steps."""
    batch, steps, width = b.shape
    pad = -steps % block_size  # the last block is filled with b = 0, a = 1, and cut off below
    b = F.pad(b, (0, 0, 0, pad))
    blocks = b.size(1) // block_size
    b_steps = b.view(batch, blocks, block_size, width).unbind(2)
    if a.dim() == 3:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        a_steps = a.view(batch, blocks, block_size, width).unbind(2)
    else:
        a_steps = [a] * block_size
    # every block from a zero state at once: its states and the product of its a's so far
    h, product, local, decay = b_steps[0], a_steps[0], [b_steps[0]], [a_steps[0]]
    for a_j, b_j in zip(a_steps[1:], b_steps[1:]):
        h, product = torch.addcmul(b_j, a_j, h), product * a_j
        local.append(h)
        decay.append(product)
    # the state entering each block, block by block
    state = b.new_zeros(batch, width) if h0 is None else h0
    ends = product.unbind(1) if product.dim() == 3 else [product] * blocks
    entering = []
    for h_end, a_end in zip(h.unbind(1), ends):
        entering.append(state)
        state = torch.addcmul(h_end, a_end, state)
    out = (
        torch.stack(local, dim=-2)
        + torch.stack(decay, dim=-2) * torch.stack(entering, 1)[:, :, None]
    )
    return out.reshape(batch, blocks * block_size, width)[:, :steps]


def linear_scan(mode: str, a: Tensor, b: Tensor, h0: Tensor | None, block_size: int) -> Tensor:
    """A cell's `mode=blocked` or `mode=sequential`, from a and b themselves."""
    if mode == "blocked":
        return blocked_scan(a, b, h0, block_size)
    return sequential_scan(a, b, h0)


# parallel: the cell's own scan (minGRU's log-space scan, the LRU's doubling scan)
MODES = ("parallel", "blocked", "sequential")


def check_scan_options(mode: str, chunk_size: int, block_size: int) -> None:
    """One-line errors for a scan cell's `mode`, `chunk_size` and `block_size`."""
    check_choice("model.encoder.mode", mode, MODES)
    for key, value in {"chunk_size": chunk_size, "block_size": block_size}.items():
        ok = isinstance(value, int) and value >= 1
        check(ok, f"model.encoder.{key}", value, "an integer >= 1")
