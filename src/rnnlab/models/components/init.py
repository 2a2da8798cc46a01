"""Recurrent weight initialisations (`model/init=...`): besides gates, the classic remedy for
vanishing gradients.

Each is a component called on the built encoder, `init(encoder)`. Those that set matrices act on
what the encoder reports (`recurrent_weights()`), so they work for any cell that reports them and
refuse, in one line, a cell that reports none. A new initialisation is one class with a
`__call__(encoder)` and one `conf/model/init/<name>.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnlab.utils.errors import ConfigError


@dataclass
class RecurrentWeights:
    """One layer's matrices in PyTorch's layout: gate blocks stacked along dim 0."""

    hidden_to_hidden: nn.Parameter  # (gates * H, H)
    input_to_hidden: nn.Parameter  # (gates * H, input size)
    biases: list[nn.Parameter]

    @property
    def hidden_size(self) -> int:
        return self.hidden_to_hidden.size(1)

    @property
    def gates(self) -> int:
        return self.hidden_to_hidden.size(0) // self.hidden_size


def reported_matrices(encoder: nn.Module, init: object) -> list[RecurrentWeights]:
    """The encoder's (gates * H, H) recurrent matrices; a one-line error for a cell without."""
    layers = list(encoder.recurrent_weights())
    if not layers or any(w.hidden_to_hidden.dim() != 2 for w in layers):
        raise ConfigError(
            f"model.init._target_={type(init).__name__}: {type(encoder).__name__} reports no "
            "(gates * H, H) recurrent matrices (recurrent_weights()); use model/init=default "
            "or give the cell a recurrent_weights()"
        )
    return layers


class DefaultInit:
    """Leave the cell's own initialisation as it is."""

    def __call__(self, encoder: nn.Module) -> None:
        pass


class OrthogonalInit:
    """Each gate's hidden-to-hidden block orthogonal (Saxe et al. 2014; Keras' default)."""

    def __call__(self, encoder: nn.Module) -> None:
        with torch.no_grad():
            for layer in reported_matrices(encoder, self):
                for block in layer.hidden_to_hidden.split(layer.hidden_size, dim=0):
                    nn.init.orthogonal_(block)


class IdentityInit:
    """The IRNN (Le et al. 2015, for a ReLU RNN): W_hh = I per gate, zero biases, input weights
    drawn from N(0, input_std^2)."""

    def __init__(self, input_std: float = 1e-3) -> None:
        self.input_std = input_std

    def __call__(self, encoder: nn.Module) -> None:
        with torch.no_grad():
            for layer in reported_matrices(encoder, self):
                for block in layer.hidden_to_hidden.split(layer.hidden_size, dim=0):
                    block.copy_(torch.eye(layer.hidden_size))
                nn.init.normal_(layer.input_to_hidden, std=self.input_std)
                for bias in layer.biases:
                    bias.zero_()
