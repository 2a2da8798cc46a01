"""Recurrent weight initialisations: the seed notebook's other remedy for vanishing gradients."""

from __future__ import annotations

import torch
from torch import nn

INITS = ("default", "orthogonal", "identity")


def init_recurrent(module: nn.RNNBase, how: str, forget_bias: float | None = None) -> None:
    """`orthogonal`: each gate's hidden-to-hidden block orthogonal. `identity`: IRNN (Le et al.
    2015) for a ReLU RNN: W_hh = I, zero biases, small input weights. `forget_bias`: LSTM only."""
    hidden = module.hidden_size
    with torch.no_grad():
        for name, param in module.named_parameters():
            if how == "orthogonal" and name.startswith("weight_hh"):
                for block in param.split(hidden, dim=0):
                    nn.init.orthogonal_(block)
            elif how == "identity":
                if name.startswith("weight_hh"):
                    param.copy_(torch.eye(hidden).repeat(param.size(0) // hidden, 1))
                elif name.startswith("weight_ih"):
                    nn.init.normal_(param, std=1e-3)
                else:
                    param.zero_()
            if forget_bias is not None and isinstance(module, nn.LSTM) and name.startswith("bias"):
                # gate order i, f, g, o; bias_ih + bias_hh add up, so split the value across both
                param[hidden : 2 * hidden] = forget_bias / 2
