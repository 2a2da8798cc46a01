"""The input layers: what turns a batch's inputs into the (B, T, E) vectors an encoder reads.

Every input layer is built as `layer(meta=<DataMeta>, embedding_dim=E)` and names the batch key it
reads (`input_key`), so the model and the diagnostics feed it without knowing which it is.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.meta import DataMeta
from rnnlab.utils.errors import check


def _check_init_range(init_range: float | None) -> None:
    check(
        init_range is None or init_range > 0,
        "model.embedding.init_range",
        init_range,
        "null or a number > 0",
    )


class TokenEmbedding(nn.Embedding):
    """Token ids -> vectors, with the padding row kept at zero.

    `init_range`: None keeps PyTorch's N(0, 1); a number r draws U(-r, r) (Keras' default
    is 0.05, small inputs that keep a tanh RNN unsaturated; a tied LM output layer uses 0.1)."""

    input_key = "input_ids"

    def __init__(self, meta: DataMeta, embedding_dim: int, init_range: float | None = None) -> None:
        _check_init_range(init_range)
        check(
            meta.input_size == 0,
            "model.embedding._target_",
            "TokenEmbedding",
            f"InputProjection for data with vector inputs (input_size={meta.input_size})",
        )
        super().__init__(meta.vocab_size, embedding_dim, padding_idx=meta.pad_id)
        self.output_size = embedding_dim
        if init_range is not None:
            with torch.no_grad():
                nn.init.uniform_(self.weight, -init_range, init_range)
                self.weight[meta.pad_id] = 0


class InputProjection(nn.Linear):
    """Vectors (B, T, input_size) -> (B, T, E): a learned linear map, the word embedding's place
    for data that arrives as numbers (the adding task's value and marker channels).

    `init_range`: None keeps nn.Linear's default; a number r draws the weight from U(-r, r)."""

    input_key = "inputs"

    def __init__(self, meta: DataMeta, embedding_dim: int, init_range: float | None = None) -> None:
        _check_init_range(init_range)
        check(
            meta.input_size >= 1,
            "model.embedding._target_",
            "InputProjection",
            "TokenEmbedding for data that gives token ids (input_size=0)",
        )
        super().__init__(meta.input_size, embedding_dim)
        self.output_size = embedding_dim
        if init_range is not None:
            nn.init.uniform_(self.weight, -init_range, init_range)
