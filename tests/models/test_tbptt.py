"""Truncated BPTT for every encoder x every read-out: k >= T is full BPTT, no gradient crosses
a chunk boundary, and the carried state and read-out summary give the full forward's logits."""

from __future__ import annotations

import pytest
import torch

from rnnlab.models import RNNClassifier
from rnnlab.utils import ConfigError
from tests.conftest import item_loader, quiet_trainer
from tests.models.conftest import (
    ENCODERS,
    READOUTS,
    classifier,
    fast_model,
    memory_items,
    padded_batch,
)

LENGTHS = [20, 17, 9, 3]


def _pair(encoder: str, readout: str, k: int, loss: str = "every") -> tuple[RNNClassifier, ...]:
    """The same weights, read whole and in chunks of k."""
    full = classifier(encoder, readout)
    truncated = classifier(encoder, readout, f"model.tbptt_steps={k}", f"model/tbptt_loss={loss}")
    truncated.load_state_dict(full.state_dict())
    return full, truncated


def _assert_full_bptt(full: RNNClassifier, truncated: RNNClassifier, chunks: int) -> None:
    """`truncated` yields `chunks` losses; the first is full BPTT's loss, the others (chunks
    where every row has ended) are zero, and the gradients of all of them add up to full BPTT's."""
    batch = padded_batch(LENGTHS)
    loss, _ = full._shared_step(batch)
    loss.backward()
    losses = [chunk_loss for chunk_loss, _ in truncated.tbptt_losses(batch)]
    assert len(losses) == chunks
    for chunk_loss in losses:
        chunk_loss.backward()
    torch.testing.assert_close(losses[0], loss)
    for chunk_loss in losses[1:]:
        assert chunk_loss.item() == 0.0
    for (name, a), b in zip(full.named_parameters(), truncated.parameters(), strict=True):
        assert b.grad is not None, name
        torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("k", [20, 32], ids=["k_equal", "k_longer"])
@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_chunks_as_long_as_the_batch_or_longer_give_the_full_bptt_loss_and_gradients(
    encoder: str, readout: str, k: int
) -> None:
    """k=32 > T=20 takes the padding branch (`chunks * k > ids.size(1)`): one chunk padded to
    32 tokens. Catches padding that changes what is read (pads on the left, pads with a word
    instead of the pad id where a cell or read-out looks past the lengths) or pads by too much
    (a second, spurious chunk)."""
    full, truncated = _pair(encoder, readout, k=k)
    _assert_full_bptt(full, truncated, chunks=1)


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("encoder", ["gru", "lstm"])
def test_a_rank_whose_peers_need_more_chunks_pads_and_still_gives_full_bptt(
    encoder: str, readout: str
) -> None:
    """Under DDP `_chunk_count` is the largest over the ranks: here another rank's batch needs
    two chunks of k=32 while this one's 20 tokens fit in one. Catches dropping the padding
    branch: this rank would then run one backward pass where its peer runs two (DDP hangs),
    and its losses or gradients would not be full BPTT's."""
    full, truncated = _pair(encoder, readout, k=32)
    truncated._chunk_count = lambda length: 2  # what the reduce over the ranks would return
    _assert_full_bptt(full, truncated, chunks=2)


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_no_gradient_crosses_a_chunk_boundary(encoder: str, readout: str) -> None:
    _, model = _pair(encoder, readout, k=5)
    ids = torch.cat([torch.arange(10, 15), torch.arange(20, 25)]).repeat(2, 1)
    batch = {
        "input_ids": ids,
        "lengths": torch.tensor([10, 10]),
        "labels": torch.tensor([1, 0]),
    }
    carried = []
    original = model.encoder.forward

    def spy(x: torch.Tensor, lengths: torch.Tensor, state: object = None) -> object:
        carried.append(state)
        return original(x, lengths, state)

    model.encoder.forward = spy
    losses = model.tbptt_losses(batch)
    next(losses)  # the first chunk; its loss is left alone
    second, _ = next(losses)
    second.backward()
    grad = model.embedding.weight.grad
    assert grad[10:15].abs().sum() == 0, "gradient reached tokens of the previous chunk"
    assert grad[20:25].abs().sum() > 0
    assert carried[0] is None
    tensors = torch.utils._pytree.tree_leaves(carried[1])
    assert tensors and all(not t.requires_grad and t.grad_fn is None for t in tensors)


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_chunked_logits_with_the_carried_state_equal_the_full_forward(
    encoder: str, readout: str
) -> None:
    """Rows 2 and 3 end in earlier chunks (k=4): their read-out summaries are kept, not their
    (junk) encoder state, so every row's last logits are the full forward's."""
    full, truncated = _pair(encoder, readout, k=4, loss="last")
    full.eval(), truncated.eval()
    batch = padded_batch(LENGTHS)
    per_chunk = [logits for _, logits in truncated.tbptt_losses(batch)]
    assert len(per_chunk) == 1  # tbptt_loss=last: only the final chunk has a loss
    expected = full(batch["input_ids"], batch["lengths"])
    torch.testing.assert_close(per_chunk[0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("readout", READOUTS)
def test_a_sequence_that_ended_in_an_earlier_chunk_keeps_its_read_out_summary(
    readout: str,
) -> None:
    _, model = _pair("gru", readout, k=4, loss="every")
    model.eval()
    batch = padded_batch(LENGTHS)
    per_chunk = [logits for _, logits in model.tbptt_losses(batch)]
    assert len(per_chunk) == 5
    alone = model(batch["input_ids"][3:, :3], torch.tensor([3]))
    for logits in per_chunk:  # row 3 (3 tokens) ends in chunk 0 and never changes after
        torch.testing.assert_close(logits[3], alone[0], atol=1e-5, rtol=1e-5)


def test_tbptt_loss_every_averages_over_the_rows_still_running() -> None:
    _, model = _pair("rnn", "last", k=4)
    batch = padded_batch(LENGTHS)
    losses = [(loss, logits) for loss, logits in model.tbptt_losses(batch)]
    last_loss, last_logits = losses[-1]  # chunk 4 (steps 16-19): rows 0 and 1 are running
    expected = model.loss(last_logits[:2], batch["labels"][:2])
    assert not torch.allclose(expected, model.loss(last_logits, batch["labels"]))
    torch.testing.assert_close(last_loss, expected)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_a_tbptt_fit_steps_the_optimizer_once_per_chunk(encoder: str) -> None:
    model = classifier(encoder, "last", "model.tbptt_steps=5", "model.scheduler=null")
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, item_loader(memory_items(16), 8))
    assert trainer.global_step == 2 * 3
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_a_task_that_needs_memory_across_chunks_still_trains() -> None:
    model = fast_model(
        [
            "model=lstm",
            "model/readout=last",
            "model.embedding_dim=16",
            "model.hidden_size=32",
            "model.dropout=0.0",
            "model.tbptt_steps=5",
            "model.optimizer.lr=1e-2",
            "model.optimizer.weight_decay=0.0",
            "model.scheduler=null",
        ]
    )
    loader = item_loader(memory_items(), 32)
    trainer = quiet_trainer(max_epochs=40)
    trainer.fit(model, loader)
    assert trainer.global_step == 40 * 2 * 3  # one optimizer step per chunk
    batch = next(iter(loader))
    with torch.no_grad():
        predicted = model(batch["input_ids"], batch["lengths"]) > 0
    assert (predicted.long() == batch["labels"]).float().mean() == 1.0


def test_tbptt_refuses_a_bidirectional_network() -> None:
    with pytest.raises(ConfigError, match=r"^model\.tbptt_steps=5: .*bidirectional"):
        classifier("gru", "max", "model.bidirectional=true", "model.tbptt_steps=5")


@pytest.mark.parametrize(
    ("override", "message"),
    [("model.tbptt_steps=0", r"model\.tbptt_steps=0")],
)
def test_bad_tbptt_settings_are_refused(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        classifier("gru", "max", override)
