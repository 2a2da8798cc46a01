import pytest
import torch

from rnnlab.models import RNNClassifier
from rnnlab.utils import ConfigError
from tests.conftest import item_loader, quiet_trainer


def _pair(cell: str, k: int, pooling: str = "max") -> tuple[RNNClassifier, RNNClassifier]:
    torch.manual_seed(0)
    full = RNNClassifier(
        vocab_size=60, pad_id=0, cell=cell, embedding_dim=8, hidden_size=8, pooling=pooling
    )
    truncated = RNNClassifier(
        vocab_size=60,
        pad_id=0,
        cell=cell,
        embedding_dim=8,
        hidden_size=8,
        pooling=pooling,
        tbptt_steps=k,
    )
    truncated.load_state_dict(full.state_dict())
    return full, truncated


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    lengths = torch.tensor([20, 17, 9, 3])
    ids = torch.randint(1, 60, (4, 20))
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return {"input_ids": ids, "lengths": lengths, "labels": torch.tensor([1.0, 0.0, 1.0, 0.0])}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
def test_chunks_as_long_as_the_batch_give_the_full_bptt_gradients(cell, pooling) -> None:
    full, truncated = _pair(cell, k=20, pooling=pooling)
    batch = _batch()
    loss, _ = full._shared_step(batch)
    loss.backward()
    (chunk_loss, _), *rest = list(truncated.tbptt_losses(batch))
    assert not rest
    chunk_loss.backward()
    torch.testing.assert_close(chunk_loss, loss)
    for (name, a), b in zip(full.named_parameters(), truncated.parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_no_gradient_crosses_a_chunk_boundary(cell) -> None:
    _, model = _pair(cell, k=5, pooling="last")
    ids = torch.cat([torch.arange(10, 15), torch.arange(20, 25)]).repeat(2, 1)
    batch = {
        "input_ids": ids,
        "lengths": torch.tensor([10, 10]),
        "labels": torch.tensor([1.0, 0.0]),
    }
    carried = []
    losses = model.tbptt_losses(batch)
    next(losses)  # the first chunk; its loss is left alone
    original = model.encoder.forward_chunk

    def spy(x, chunk_len, state):
        carried.append(state)
        return original(x, chunk_len, state)

    model.encoder.forward_chunk = spy
    second, _ = next(losses)
    second.backward()
    grad = model.embedding.weight.grad
    assert grad[10:15].abs().sum() == 0, "gradient reached tokens of the previous chunk"
    assert grad[20:25].abs().sum() > 0
    state = carried[0][0] if cell == "lstm" else carried[0]
    assert not state.requires_grad and state.grad_fn is None


def test_a_sequence_that_ended_in_an_earlier_chunk_keeps_its_state() -> None:
    _, model = _pair("gru", k=4, pooling="last")
    model.eval()
    batch = _batch()
    per_chunk = [logits for _, logits in model.tbptt_losses(batch)]
    alone = model(batch["input_ids"][3:, :3], torch.tensor([3]))
    torch.testing.assert_close(per_chunk[-1][3], alone[0], atol=1e-5, rtol=1e-5)


def _memory_items(n: int = 64, length: int = 15) -> list:
    """The label is the first token; the rest is noise: the state must carry it across chunks."""
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        ids = torch.randint(3, 20, (length,), generator=gen)
        ids[0] = 1 + i % 2
        items.append((ids.numpy(), i % 2))
    return items


def test_a_task_that_needs_memory_across_chunks_still_trains() -> None:
    torch.manual_seed(0)
    model = RNNClassifier(
        vocab_size=20,
        pad_id=0,
        cell="lstm",
        embedding_dim=16,
        hidden_size=32,
        pooling="last",
        tbptt_steps=5,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
    )
    loader = item_loader(_memory_items(), 32)
    trainer = quiet_trainer(
        max_epochs=40,
    )
    trainer.fit(model, loader)
    assert trainer.global_step == 40 * 2 * 3  # one optimizer step per chunk
    batch = next(iter(loader))
    with torch.no_grad():
        predicted = model(batch["input_ids"], batch["lengths"]) > 0
    assert (predicted.float() == batch["labels"]).float().mean() == 1.0


def test_tbptt_refuses_a_bidirectional_network() -> None:
    with pytest.raises(ConfigError, match="model.tbptt_steps=5.*bidirectional"):
        RNNClassifier(vocab_size=10, pad_id=0, bidirectional=True, tbptt_steps=5)


def test_tbptt_steps_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="model.tbptt_steps=0"):
        RNNClassifier(vocab_size=10, pad_id=0, tbptt_steps=0)
