"""model=elman, the hand-written cell: it computes what nn.RNN computes, and the rest of rnnlab
(truncated BPTT, mixed precision, the language model, model/init) takes it as any other."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.models.components import ElmanEncoder
from tests.conftest import item_loader, quiet_trainer
from tests.models.conftest import classifier, language_model, memory_items, torch_reference


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman_outputs_and_gradients_equal_nn_rnns(nonlinearity: str) -> None:
    model = classifier("elman", "max", f"model.encoder.nonlinearity={nonlinearity}")
    layer = model.encoder.forward_layers[0]
    reference = torch_reference(layer)
    assert reference.nonlinearity == nonlinearity
    x = torch.randn(3, 9, 8)
    h0 = torch.randn(3, 8)
    ours, h_ours = layer(x, h0)
    theirs, h_theirs = reference(x, h0.unsqueeze(0))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h_ours, h_theirs[0], atol=1e-6, rtol=1e-5)
    weight = torch.randn_like(ours)
    (ours * weight).sum().backward()
    (theirs * weight).sum().backward()
    pairs = {
        "weight_x": reference.weight_ih_l0,
        "weight_h": reference.weight_hh_l0,
        "bias": reference.bias_ih_l0,
    }
    for name, param in layer.named_parameters():
        torch.testing.assert_close(param.grad, pairs[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_two_layer_bidirectional_elman_encoder_equals_nn_rnn(nonlinearity: str) -> None:
    torch.manual_seed(0)
    encoder = ElmanEncoder(6, 5, num_layers=2, bidirectional=True, nonlinearity=nonlinearity)
    reference = nn.RNN(
        6, 5, num_layers=2, bidirectional=True, nonlinearity=nonlinearity, batch_first=True
    )
    with torch.no_grad():
        for depth in range(2):
            for suffix, layer in (
                ("", encoder.forward_layers[depth]),
                ("_reverse", encoder.backward_layers[depth]),
            ):
                getattr(reference, f"weight_ih_l{depth}{suffix}").copy_(layer.weight_x)
                getattr(reference, f"weight_hh_l{depth}{suffix}").copy_(layer.weight_h)
                getattr(reference, f"bias_ih_l{depth}{suffix}").copy_(layer.bias)
                getattr(reference, f"bias_hh_l{depth}{suffix}").zero_()
    x = torch.randn(2, 7, 6)
    ours, _ = encoder(x, torch.tensor([7, 7]))
    theirs, _ = reference(x)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_elman_trains_under_truncated_bptt_one_step_per_chunk() -> None:
    model = classifier("elman", "last", "model.tbptt_steps=5", "model.scheduler=null")
    before = model.encoder.forward_layers[0].weight_h.detach().clone()
    trainer = quiet_trainer(max_epochs=1)
    trainer.fit(model, item_loader(memory_items(16), 8))
    assert trainer.global_step == 2 * 3  # 2 batches of 15 tokens, 3 chunks each
    assert not torch.equal(model.encoder.forward_layers[0].weight_h, before)


def test_elman_runs_under_cpu_bf16_autocast() -> None:
    model = classifier("elman", "attention").train()
    ids = torch.randint(1, 60, (3, 10))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids, torch.tensor([10, 4, 1]))
    logits.sum().backward()
    assert torch.isfinite(logits).all()
    assert torch.isfinite(model.encoder.forward_layers[0].weight_h.grad).all()


def test_elman_is_a_language_model_encoder_too() -> None:
    lm = language_model("elman").eval()
    assert isinstance(lm.encoder, ElmanEncoder)
    ids = torch.randint(1, 50, (2, 12))
    whole, _ = lm(ids)
    first, state = lm(ids[:, :5])
    second, _ = lm(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    loss, count = lm.loss(whole, torch.randint(1, 50, (2, 12)))
    loss.backward()
    assert int(count) == 24 and torch.isfinite(loss)
    assert lm.encoder.forward_layers[0].weight_h.grad.abs().sum() > 0


def test_elman_init_orthogonal_and_identity_set_its_own_matrices() -> None:
    orthogonal = classifier("elman", "max", "model/init=orthogonal").encoder.forward_layers[0]
    weight = orthogonal.weight_h.detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(8), atol=1e-5, rtol=0)
    identity = classifier(
        "elman", "max", "model/init=identity", "model.encoder.nonlinearity=relu"
    ).encoder.forward_layers[0]
    assert torch.equal(identity.weight_h, torch.eye(8))
    assert not identity.bias.any() and identity.weight_x.abs().max() < 1e-2
