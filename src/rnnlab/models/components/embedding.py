"""The input layer: token ids -> vectors, with the padding row kept at zero."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.utils.errors import check


class TokenEmbedding(nn.Embedding):
    """`init_range`: None keeps PyTorch's N(0, 1); a number r draws U(-r, r) (Keras' default
    is 0.05, small inputs that keep a tanh RNN unsaturated; a tied LM output layer uses 0.1)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int,
        init_range: float | None = None,
    ) -> None:
        check(
            init_range is None or init_range > 0,
            "model.embedding.init_range",
            init_range,
            "null or a number > 0",
        )
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.output_size = embedding_dim
        if init_range is not None:
            with torch.no_grad():
                nn.init.uniform_(self.weight, -init_range, init_range)
                self.weight[padding_idx] = 0
