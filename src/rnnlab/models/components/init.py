"""Recurrent weight initialisations: besides gates, the classic remedy for vanishing gradients.

They act on the matrices an encoder reports (`Encoder.recurrent_weights()`), so they work for any
cell that reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

INITS = ("default", "orthogonal", "identity")


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


def init_recurrent(layers: list[RecurrentWeights], how: str) -> None:
    """`default`: leave the cell's own init. `orthogonal`: each gate's hidden-to-hidden block
    orthogonal (Saxe et al. 2014; Keras' default). `identity`: the IRNN (Le et al. 2015, for a
    ReLU RNN): W_hh = I per gate, zero biases, small input weights."""
    with torch.no_grad():
        for layer in layers:
            blocks = layer.hidden_to_hidden.split(layer.hidden_size, dim=0)
            if how == "orthogonal":
                for block in blocks:
                    nn.init.orthogonal_(block)
            elif how == "identity":
                for block in blocks:
                    block.copy_(torch.eye(layer.hidden_size))
                nn.init.normal_(layer.input_to_hidden, std=1e-3)
                for bias in layer.biases:
                    bias.zero_()
