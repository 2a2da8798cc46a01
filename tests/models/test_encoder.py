import pytest
import torch

from rnnlab.models import RNNClassifier
from rnnlab.models.encoder import reverse_within_length


def _model(cell: str, pooling: str, bidirectional: bool, num_layers: int = 1) -> RNNClassifier:
    torch.manual_seed(0)
    return RNNClassifier(
        vocab_size=50,
        pad_id=0,
        cell=cell,
        embedding_dim=8,
        hidden_size=8,
        num_layers=num_layers,
        bidirectional=bidirectional,
        pooling=pooling,
    ).eval()


def test_reverse_within_length_reverses_valid_steps_and_keeps_padding() -> None:
    x = torch.tensor([[1, 2, 3, 0, 0], [1, 2, 3, 4, 5]]).unsqueeze(-1)
    out = reverse_within_length(x, torch.tensor([3, 5])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0, 0], [5, 4, 3, 2, 1]]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "concat"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_prediction_does_not_change_when_the_review_is_padded(cell, pooling, bidirectional) -> None:
    model = _model(cell, pooling, bidirectional, num_layers=2)
    review = torch.randint(1, 50, (7,))
    longer = torch.randint(1, 50, (30,))
    alone = model(review.unsqueeze(0), torch.tensor([7]))
    batch = torch.zeros(2, 30, dtype=torch.long)
    batch[0, :7], batch[1] = review, longer
    padded = model(batch, torch.tensor([7, 30]))
    torch.testing.assert_close(padded[0], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_padded_last_state_matches_packed_sequence_reference(cell) -> None:
    model = _model(cell, "last", bidirectional=True)
    ids = torch.randint(1, 50, (3, 12))
    lengths = torch.tensor([12, 5, 1])
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    ours = model(ids, lengths)
    x = model.embedding(ids)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, lengths, batch_first=True, enforce_sorted=False
    )
    reference = getattr(torch.nn, cell.upper())(8, 8, batch_first=True, bidirectional=True)
    enc = model.encoder
    with torch.no_grad():
        for suffix, module in (("", enc.forward_layers[0]), ("_reverse", enc.backward_layers[0])):
            for name, p in module.named_parameters():
                getattr(reference, name + suffix).copy_(p)
    h = reference(packed)[1]
    h = h[0] if cell == "lstm" else h
    expected = model.head(torch.cat([h[0], h[1]], dim=-1)).squeeze(-1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bf16_autocast_on_cpu_runs_for_every_cell(cell) -> None:
    model = _model(cell, "max", bidirectional=False).train()
    ids = torch.randint(1, 50, (4, 20))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids, torch.tensor([20, 15, 3, 1]))
    logits.sum().backward()
    assert torch.isfinite(logits).all()
