"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"): a linear recurrence with a complex diagonal matrix, read out through its real
part.

    lambda = exp(-exp(nu) + i exp(theta))          (|lambda| < 1 for every nu)
    h_t = lambda * h_{t-1} + gamma * (B x_t),      gamma = exp(gamma_log), at first sqrt(1 - |lambda|^2)
    y_t = act(Re(C h_t) + D x_t)

h is complex (hidden_size states per layer, also the output size). The ring initialisation
draws |lambda| uniformly on the ring between `r_min` and `r_max` and the phase in
[0, `max_phase`]; the defaults 0.9 / 0.999 / 2 pi keep a long memory from the start (the paper's
choice for long-range tasks; 0 / 1 draws from the whole unit disk, and the paper narrows the
phase to pi / 10 for its longest task).
gamma is trainable, initialised to the normalisation, as in the paper. D is the paper's
per-feature skip D * x when the input is as wide as the state; where it is not (a first layer
reading an embedding of another size) it is a real hidden x input matrix. `activation`: `gelu`
(the nonlinearity of the paper's block) or `none` (the bare linear layer).

`mode=parallel` runs the recurrence as a chunked scan: within a chunk of `chunk_size` steps a
Hillis-Steele scan (log2 chunk_size doubling steps, lambda^d from exp(d log lambda), so powers
only ever shrink), across chunks the state is carried; `mode=blocked` runs the blocked scan of
`scan.py` (blocks of `block_size` steps); `mode=sequential` runs it step by step. All three give
the same outputs, state and gradients. The state (complex, (B, hidden_size) per layer)
is each row's at its own last real step.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.components.encoder import StackedEncoder, State
from rnnlab.models.components.mingru import at_lengths, lengths_known
from rnnlab.models.components.scan import check_scan_options, linear_scan
from rnnlab.utils.errors import check, check_choice

ACTIVATIONS = ("gelu", "none")
# |lambda| = exp(-exp(nu)) rounds to 1.0 in float32 once exp(nu) < 6e-8: keep it below
MIN_DECAY = 1e-6


def ring_init(size: int, r_min: float, r_max: float, max_phase: float) -> tuple[Tensor, Tensor]:
    """nu, theta with |lambda| uniform in area on the ring r_min <= |lambda| <= r_max and the
    phase uniform in [0, max_phase] (the paper's initialisation)."""
    u1, u2 = torch.rand(size), torch.rand(size)
    # |lambda|^2, kept where nu stays finite (r_min = 0 or r_max = 1 would reach its ends)
    radius_sq = (u1 * (r_max**2 - r_min**2) + r_min**2).clamp(1e-12, math.exp(-2 * MIN_DECAY))
    nu = torch.log(-0.5 * torch.log(radius_sq))
    theta = torch.log(max_phase * u2)
    return nu, theta


def doubling_scan(u: Tensor, log_lambda: Tensor) -> Tensor:
    """h_t = lambda h_{t-1} + u_t along dim 1 from h_0 = 0: Hillis-Steele, log2(T) steps."""
    steps, d = u.size(1), 1
    while d < steps:
        power = torch.exp(d * log_lambda)  # lambda^d
        u = torch.cat([u[:, :d], u[:, d:] + power * u[:, :-d]], dim=1)
        d *= 2
    return u


def parallel_scan(u: Tensor, log_lambda: Tensor, h0: Tensor | None, chunk_size: int) -> Tensor:
    """Doubling scans within chunks; each chunk adds lambda^(t+1) times the state before it."""
    parts = []
    for part in u.split(chunk_size, dim=1):
        h = doubling_scan(part, log_lambda)
        if h0 is not None:
            steps = torch.arange(1, part.size(1) + 1, device=u.device, dtype=u.real.dtype)
            h = h + torch.exp(steps.unsqueeze(1) * log_lambda) * h0.unsqueeze(1)
        parts.append(h)
        h0 = h[:, -1]
    return torch.cat(parts, dim=1)


class LRULayer(nn.Module):
    """One layer, one direction: B x for every step at once, the complex scan, then C and D."""

    lengths: Tensor | None = None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        activation: str = "gelu",
        mode: str = "sequential",
        chunk_size: int = 128,
        block_size: int = 32,
    ) -> None:
        super().__init__()
        self.mode, self.activation = mode, activation
        self.chunk_size, self.block_size = chunk_size, block_size
        nu, theta = ring_init(hidden_size, r_min, r_max, max_phase)
        self.nu_log, self.theta_log = nn.Parameter(nu), nn.Parameter(theta)
        radius = torch.exp(-torch.exp(nu))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - radius**2)))
        # B's real and imaginary parts stacked, each N(0, 1 / (2 input_size)); C's N(0, 1 / N)
        self.B = nn.Parameter(torch.randn(2 * hidden_size, input_size) / math.sqrt(2 * input_size))
        self.C = nn.Parameter(torch.randn(hidden_size, 2 * hidden_size) / math.sqrt(hidden_size))
        d_shape = (hidden_size,) if input_size == hidden_size else (hidden_size, input_size)
        scale = 1.0 if input_size == hidden_size else 1 / math.sqrt(input_size)
        self.D = nn.Parameter(torch.randn(d_shape) * scale)

    def log_lambda(self) -> Tensor:
        """log lambda = -exp(nu) + i exp(theta); its real part < 0, so |lambda| < 1."""
        return torch.complex(
            -torch.exp(self.nu_log).clamp(min=MIN_DECAY), torch.exp(self.theta_log)
        )

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, E) [+ h_0 complex (B, H)] -> outputs (B, T, H) and the complex state."""
        log_lambda = self.log_lambda()
        driven = F.linear(x, self.B) * torch.exp(self.gamma_log).repeat(2)
        u = torch.complex(*driven.chunk(2, dim=-1))
        if self.mode == "parallel":
            h = parallel_scan(u, log_lambda, state, self.chunk_size)
        else:
            h = linear_scan(self.mode, torch.exp(log_lambda), u, state, self.block_size)
        # Re(C h) = C_re h_re - C_im h_im, with self.C = [C_re, -C_im]
        y = F.linear(torch.cat([h.real, h.imag], dim=-1), self.C)
        y = y + (x * self.D if self.D.dim() == 1 else F.linear(x, self.D))
        return (F.gelu(y) if self.activation == "gelu" else y), at_lengths(h, self.lengths)


class LRUEncoder(StackedEncoder):
    """`r_min` / `r_max` / `max_phase`: the ring initialisation; `activation`: gelu | none;
    `mode`: parallel (a chunked doubling scan) | blocked | sequential; `chunk_size`: steps per
    doubling scan; `block_size`: steps per block of the blocked scan."""

    state_at_length = True  # the state is each row's at its own last real step

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        activation: str = "gelu",
        mode: str = "sequential",
        chunk_size: int = 128,
        block_size: int = 32,
    ) -> None:
        check(
            0 <= r_min < r_max <= 1,
            "model.encoder.r_min/r_max",
            (r_min, r_max),
            "0 <= r_min < r_max <= 1",
        )
        check(max_phase > 0, "model.encoder.max_phase", max_phase, "a number > 0")
        check_choice("model.encoder.activation", activation, ACTIVATIONS)
        check_scan_options(mode, chunk_size, block_size)
        layer = functools.partial(
            LRULayer,
            r_min=r_min,
            r_max=r_max,
            max_phase=max_phase,
            activation=activation,
            mode=mode,
            chunk_size=chunk_size,
            block_size=block_size,
        )
        super().__init__(layer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def forward(self, x: Tensor, lengths: Tensor, state: State = None) -> tuple[Tensor, State]:
        with lengths_known(self, lengths):
            return super().forward(x, lengths, state)
