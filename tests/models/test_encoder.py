"""Every encoder in the registry through the Encoder interface alone: padding, bidirectional
reading, initialisation, mixed precision."""

from __future__ import annotations

import pytest
import torch

from rnnlab.models.components.encoder import StackedEncoder, reverse_within_length
from rnnlab.models.components.init import DefaultInit, OrthogonalInit
from rnnlab.utils.errors import ConfigError
from tests.models.conftest import (
    ENCODERS,
    INITS,
    MATRIX_CELLS,
    READOUTS,
    TORCH_TWIN_CELLS,
    VectorLayer,
    classifier,
    padded_batch,
    torch_reference,
)


def test_reverse_within_length_reverses_valid_steps_and_keeps_padding() -> None:
    x = torch.tensor([[1, 2, 3, 0, 0], [1, 2, 3, 4, 5]]).unsqueeze(-1)
    out = reverse_within_length(x, torch.tensor([3, 5])).squeeze(-1)
    assert out.tolist() == [[3, 2, 1, 0, 0], [5, 4, 3, 2, 1]]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("encoder", ENCODERS)
def test_a_rows_outputs_ignore_appended_padding_and_longer_rows(
    encoder: str, bidirectional: bool
) -> None:
    model = classifier(encoder, "max", "model.num_layers=2", f"model.bidirectional={bidirectional}")
    enc = model.encoder.eval()
    row = torch.randn(1, 7, 8)
    alone, _ = enc(row, torch.tensor([7]))
    batch = torch.randn(2, 30, 8) * 5  # junk, not zeros, after the row's end
    batch[0, :7] = row[0]
    together, _ = enc(batch, torch.tensor([7, 30]))
    assert together.shape == (2, 30, enc.output_size)
    torch.testing.assert_close(together[0, :7], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_prediction_does_not_change_when_the_review_is_padded(
    encoder: str, readout: str, bidirectional: bool
) -> None:
    model = classifier(
        encoder, readout, "model.num_layers=2", f"model.bidirectional={bidirectional}"
    ).eval()
    review = torch.randint(1, 60, (7,))
    alone = model(review.unsqueeze(0), torch.tensor([7]))
    padded = torch.zeros(1, 12, dtype=torch.long)
    padded[0, :7] = review
    with_padding = model(padded, torch.tensor([7]))
    batch = torch.zeros(2, 30, dtype=torch.long)
    batch[0, :7], batch[1] = review, torch.randint(1, 60, (30,))
    with_longer = model(batch, torch.tensor([7, 30]))
    torch.testing.assert_close(with_padding[0], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_longer[0], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder", TORCH_TWIN_CELLS)
def test_bidirectional_last_state_matches_a_packed_sequence_reference(encoder: str) -> None:
    model = classifier(encoder, "last", "model.bidirectional=true").eval()
    batch = padded_batch([12, 5, 1])
    ours = model(batch["input_ids"], batch["lengths"])
    enc = model.encoder
    reference = torch_reference(enc.forward_layers[0], enc.backward_layers[0])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        model.embedding(batch["input_ids"]),
        batch["lengths"],
        batch_first=True,
        enforce_sorted=False,
    )
    h = reference(packed)[1]
    h = h[0] if isinstance(reference, torch.nn.LSTM) else h
    expected = model.head(torch.cat([h[0], h[1]], dim=-1)).squeeze(-1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_layer_groups_hold_each_encoder_parameter_once_by_depth(encoder: str) -> None:
    enc = classifier(encoder, "max", "model.num_layers=3", "model.bidirectional=true").encoder
    groups = enc.layer_groups()
    assert len(groups) == 3 and all(groups)
    ids = [id(p) for group in groups for p in group]
    assert sorted(ids) == sorted(id(p) for p in enc.parameters())
    # depth d holds both directions' layer d
    for depth, group in enumerate(groups):
        layers = (enc.forward_layers[depth], enc.backward_layers[depth])
        assert {id(p) for p in group} == {id(p) for layer in layers for p in layer.parameters()}


@pytest.mark.parametrize("encoder", MATRIX_CELLS)
def test_recurrent_weights_are_the_encoders_own_parameters_for_every_layer(encoder: str) -> None:
    enc = classifier(encoder, "max", "model.num_layers=2", "model.bidirectional=true").encoder
    weights = enc.recurrent_weights()
    assert len(weights) == 4  # 2 depths x 2 directions
    own = {id(p) for p in enc.parameters()}
    for layer in weights:
        assert id(layer.hidden_to_hidden) in own and id(layer.input_to_hidden) in own
        assert all(id(b) in own for b in layer.biases) and layer.biases
        assert layer.hidden_to_hidden.shape == (layer.gates * 8, 8)


@pytest.mark.parametrize("encoder", MATRIX_CELLS)
def test_orthogonal_init_makes_every_gate_block_orthogonal(encoder: str) -> None:
    model = classifier(encoder, "max", "model/init=orthogonal", "model.bidirectional=true")
    default = classifier(encoder, "max", "model.bidirectional=true")
    for layer, before in zip(
        model.encoder.recurrent_weights(), default.encoder.recurrent_weights()
    ):
        assert not torch.equal(layer.hidden_to_hidden, before.hidden_to_hidden)
        for block in layer.hidden_to_hidden.detach().split(layer.hidden_size):
            torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoder", MATRIX_CELLS)
def test_identity_init_sets_identity_blocks_zero_biases_and_small_inputs(encoder: str) -> None:
    model = classifier(encoder, "max", "model/init=identity", "model.bidirectional=true")
    for layer in model.encoder.recurrent_weights():
        for block in layer.hidden_to_hidden.detach().split(layer.hidden_size):
            assert torch.equal(block, torch.eye(8))
        assert all(not bias.any() for bias in layer.biases)
        assert 0 < layer.input_to_hidden.abs().max() < 1e-2


def test_an_init_that_needs_matrices_refuses_a_cell_without_them_in_one_line() -> None:
    encoder = StackedEncoder(VectorLayer, input_size=4, hidden_size=3)
    assert encoder.recurrent_weights() == []
    encoder.initialise(DefaultInit())  # the cell's own init: nothing is asked of it
    with pytest.raises(
        ConfigError, match=r"^model\.init\._target_=OrthogonalInit: StackedEncoder"
    ) as err:
        encoder.initialise(OrthogonalInit())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("init", INITS)
def test_lstm_forget_bias_survives_every_init(init: str) -> None:
    model = classifier("lstm", "max", "model.encoder.forget_bias=1.0", f"model/init={init}")
    for layer in model.encoder.recurrent_weights():
        forget = sum(bias[8:16] for bias in layer.biases)
        torch.testing.assert_close(forget, torch.ones(8))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_bf16_autocast_on_cpu_runs_and_keeps_the_recurrence_in_float32(encoder: str) -> None:
    model = classifier(encoder, "max").train()
    ids = torch.randint(1, 60, (4, 20))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids, torch.tensor([20, 15, 3, 1]))
        outputs, _ = model.encoder(model.embedding(ids), torch.tensor([20, 15, 3, 1]))
    logits.sum().backward()
    assert torch.isfinite(logits).all() and outputs.dtype == torch.float32
    assert all(torch.isfinite(p.grad).all() for p in model.encoder.parameters())
