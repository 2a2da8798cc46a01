"""The language model's output layer: features -> a distribution over the next token.

Each decoder arrives as a partial (conf/model/decoder/) and gets its sizes and the input
embedding from the model, `decoder(hidden_size=..., vocab_size=..., embedding=...)`. A new one
subclasses `Decoder` in its own module and gets its own `conf/model/decoder/<name>.yaml`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.utils.errors import check


class Decoder(ABC):
    """What the language model asks of its output layer (an nn.Module mixed in first)."""

    @abstractmethod
    def loss(self, features: Tensor, targets: Tensor) -> Tensor:
        """Features (N, H) and targets (N,) -> the mean negative log-likelihood."""

    @abstractmethod
    def log_probs(self, features: Tensor) -> Tensor:
        """Features (..., H) -> log-probabilities over the whole vocabulary (..., V)."""

    def zero_on_every_parameter(self) -> Tensor | float:
        """A zero that touches every parameter a batch might leave without a gradient (DDP
        all-reduces only once every parameter has one); 0.0 for a decoder that uses them all."""
        return 0.0


class FullDecoder(nn.Linear, Decoder):
    """Its own vocab x hidden output layer."""

    def __init__(self, hidden_size: int, vocab_size: int, embedding: nn.Module) -> None:
        super().__init__(hidden_size, vocab_size)

    def loss(self, features: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(self(features).float(), targets)

    def log_probs(self, features: Tensor) -> Tensor:
        return F.log_softmax(self(features).float(), dim=-1)


class TiedDecoder(FullDecoder):
    """The output layer is the input embedding (Press & Wolf 2017); features wider than the
    embedding are projected down to it first."""

    def __init__(self, hidden_size: int, vocab_size: int, embedding: nn.Module) -> None:
        embedding_dim = embedding.weight.size(1)
        project = nn.Linear(hidden_size, embedding_dim) if hidden_size != embedding_dim else None
        super().__init__(embedding_dim, vocab_size, embedding)
        self.project = project
        self.weight = embedding.weight

    def forward(self, features: Tensor) -> Tensor:
        return super().forward(features if self.project is None else self.project(features))


def _no_autocast(x: Tensor) -> torch.autocast:
    """AdaptiveLogSoftmaxWithLoss fills a float32 buffer with its head's output, which mixed
    precision would compute in half precision (index_copy_ then fails): run it in float32."""
    return torch.autocast(x.device.type, enabled=False)


class AdaptiveDecoder(nn.AdaptiveLogSoftmaxWithLoss, Decoder):
    """nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017): word ids below `cutoffs[0]` in a small
    head, rarer ones in cheaper clusters, each `div_value` times narrower than the previous."""

    def __init__(
        self,
        hidden_size: int,
        vocab_size: int,
        embedding: nn.Module,
        cutoffs: Sequence[int] = (2000, 10000),
        div_value: float = 4.0,
    ) -> None:
        cutoffs = [int(c) for c in cutoffs]
        check(
            bool(cutoffs)
            and cutoffs == sorted(set(cutoffs))
            and cutoffs[0] > 0
            and cutoffs[-1] < vocab_size - 1,
            "model.decoder.cutoffs",
            cutoffs,
            f"increasing integers between 1 and vocab_size - 2 = {vocab_size - 2}",
        )
        check(
            div_value > 0 and hidden_size // div_value ** len(cutoffs) >= 1,
            "model.decoder.div_value",
            div_value,
            f"a number > 0 that leaves the last cluster >= 1 of hidden_size={hidden_size} "
            "dimensions (each cluster has the previous one's / div_value)",
        )
        super().__init__(hidden_size, vocab_size, cutoffs, div_value)

    def loss(self, features: Tensor, targets: Tensor) -> Tensor:
        with _no_autocast(features):
            return self(features.float(), targets).loss

    def log_probs(self, features: Tensor) -> Tensor:
        with _no_autocast(features):
            flat = self.log_prob(features.reshape(-1, features.size(-1)).float())
        return flat.view(*features.shape[:-1], -1)

    def zero_on_every_parameter(self) -> Tensor:
        """A tail cluster runs only for a batch with a target in it: a rank whose batch missed
        one would skip that all-reduce and the ranks would hang."""
        return 0.0 * sum(p.sum() for p in self.tail.parameters())
