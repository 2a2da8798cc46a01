"""Word-level language model on the same components, trained with stateful truncated BPTT."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MinMetric

from rnnlab.meta import DataMeta
from rnnlab.models.base import NOT_HYPERPARAMETERS, RecurrentModule, check_sizes
from rnnlab.models.components.decoder import AdaptiveDecoder, Decoder
from rnnlab.models.components.encoder import Encoder, State, detach_state
from rnnlab.models.components.init import DefaultInit
from rnnlab.utils.errors import check


def _full_lengths(ids: Tensor) -> Tensor:
    """A stream chunk has no padding: every row is as long as the chunk."""
    return torch.full((ids.size(0),), ids.size(1), device=ids.device)


class RNNLanguageModel(RecurrentModule):
    """Embedding -> encoder -> next-token distribution, a loss at every token.

    Each batch is the next chunk of `batch_size` parallel streams (`rnnlab.data.lm`): the state
    left by one batch starts the next, detached so that no gradient crosses a chunk boundary; it
    starts from zero at every epoch (and on a run resumed mid-epoch). One optimizer step per
    batch, so Lightning's automatic optimization and precision apply as is. The embedding and
    encoder are built as the classifier's are, so `RNNClassifier` can start from them.
    `tbptt_steps` is the data's chunk length (conf/data/imdb_lm.yaml reads it from here).
    """

    objective = ("val/ppl", "min")  # a language model is judged by its perplexity

    def __init__(
        self,
        meta: DataMeta,
        embedding: Callable[..., nn.Module],
        encoder: Callable[..., Encoder],
        embedding_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.1,
        init: Callable[[Encoder], None] = DefaultInit(),  # noqa: B008 (stateless)
        tbptt_steps: int = 70,
        decoder: Callable[..., Decoder] = AdaptiveDecoder,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        lr_decay: float = 1.0,
        gradual_unfreezing: bool = False,
        compile_chunk: int | None = None,
    ) -> None:
        super().__init__(meta, optimizer, scheduler, lr_decay, gradual_unfreezing)
        check_sizes(
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            tbptt_steps=tbptt_steps,
        )
        check(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
        self.save_hyperparameters(ignore=list(NOT_HYPERPARAMETERS))
        self.build_body(
            embedding,
            encoder,
            embedding_dim,
            hidden_size,
            num_layers,
            False,
            dropout,
            init,
            compile_chunk,
        )
        self.dropout = nn.Dropout(dropout)
        self.decoder = decoder(
            hidden_size=hidden_size, vocab_size=meta.vocab_size, embedding=self.embedding
        )
        self._state: State = None
        self._eval_state: State = None
        self.eval_loss = MeanMetric()
        self.val_ppl_best = MinMetric()

    def forward(self, input_ids: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Token ids (B, T) and the state they continue -> features (B, T, H) and the new state."""
        x = self.dropout(self.embedding(input_ids))
        outputs, state = self.encoder(x, _full_lengths(input_ids), state)
        return self.dropout(outputs), state

    def embed(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The input layer's output (B, T, E) and the lengths: the gradient-flow protocol."""
        return self.embedding(batch["input_ids"]), _full_lengths(batch["input_ids"])

    def loss_from_embedded(self, x: Tensor, lengths: Tensor, batch: dict[str, Tensor]) -> Tensor:
        outputs, _ = self.encoder(x, lengths)
        return self.loss(outputs, batch["targets"])[0]

    def loss(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        """Mean negative log-likelihood over the real (non-pad) targets, and their count."""
        keep = targets != self.meta.pad_id
        return self.decoder.loss(outputs[keep], targets[keep]), keep.sum()

    def log_probs(self, outputs: Tensor) -> Tensor:
        """Features (..., H) -> log-probabilities over the whole vocabulary (..., V)."""
        return self.decoder.log_probs(outputs)

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._state = None

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        outputs, state = self(batch["input_ids"], self._state)
        self._state = detach_state(state)
        loss, count = self.loss(outputs, batch["targets"])
        loss = loss + self.decoder.zero_on_every_parameter()
        self.check_finite(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=int(count))
        self.log("train/ppl", loss.exp(), prog_bar=True, batch_size=int(count))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        ppl = self._log_eval("val")
        if not self.trainer.sanity_checking:
            self.val_ppl_best(ppl)
            self.log("val/ppl_best", self.val_ppl_best.compute())

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _start_eval(self) -> None:
        """Each pass over a stream starts from a zero state and an empty loss."""
        self._eval_state = None
        self.eval_loss.reset()

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        """Validation and test read their stream in order, the state carried across batches."""
        outputs, self._eval_state = self(batch["input_ids"], self._eval_state)
        loss, count = self.loss(outputs, batch["targets"])
        self.eval_loss.update(loss, weight=count)

    def _log_eval(self, stage: str) -> Tensor:
        loss = self.eval_loss.compute()  # token-weighted over every rank's streams
        ppl = loss.exp()
        self.log_dict({f"{stage}/loss": loss, f"{stage}/ppl": ppl}, prog_bar=True)
        return ppl

    @torch.inference_mode()
    def sample(
        self,
        prompt_ids: Sequence[int],
        max_tokens: int,
        temperature: float = 1.0,
        stop_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Continue `prompt_ids` (non-empty) one sampled token at a time; stops after `stop_id`."""
        ids = torch.tensor([list(prompt_ids)], device=self.device)
        outputs, state = self(ids)
        new: list[int] = []
        for _ in range(max_tokens):
            logits = self.log_probs(outputs[:, -1]) / temperature
            logits[:, self.meta.pad_id] = -torch.inf  # never a target, so never a word
            token = int(torch.multinomial(logits.softmax(-1), 1, generator=generator))
            new.append(token)
            if token == stop_id:
                break
            outputs, state = self(torch.tensor([[token]], device=self.device), state)
        return new
