"""Read-outs: each row's summary from its own valid steps, whole or chunk by chunk, and every
read-out's parameters in the layer groups and the optimizer."""

from __future__ import annotations

import hydra
import pytest
import torch

from rnnlab.models.components import AttentionReadout, ConcatReadout, LastReadout, Readout
from tests.models.conftest import READOUTS, cached_config, classifier


def _readout(name: str, input_size: int = 6, bidirectional: bool = False) -> Readout:
    torch.manual_seed(0)
    config = cached_config((f"model/readout={name}",))["readout"]
    return hydra.utils.instantiate(config)(input_size=input_size, bidirectional=bidirectional)


@pytest.mark.parametrize("readout", READOUTS)
def test_a_rows_summary_ignores_whatever_its_padding_holds(readout: str) -> None:
    module = _readout(readout)
    outputs = torch.randn(2, 9, 6)
    lengths = torch.tensor([4, 9])
    junk = outputs.clone()
    junk[0, 4:] = 1e3
    torch.testing.assert_close(module(junk, lengths), module(outputs, lengths))
    torch.testing.assert_close(
        module(outputs, lengths)[0], module(outputs[:1, :4], torch.tensor([4]))[0]
    )


@pytest.mark.parametrize("readout", READOUTS)
def test_folding_chunks_in_with_step_gives_the_whole_sequence_summary(readout: str) -> None:
    module = _readout(readout)
    outputs = torch.randn(3, 10, 6)
    lengths = torch.tensor([10, 6, 2])
    carry = None
    for i, chunk in enumerate(outputs.split(3, dim=1)):
        chunk_len = (lengths - i * 3).clamp(0, 3)
        summary, carry = module.step(chunk, chunk_len, carry)
    assert summary.shape == (3, module.output_size)
    torch.testing.assert_close(summary, module(outputs, lengths), atol=1e-5, rtol=1e-5)


def test_attention_weights_sum_to_one_over_valid_steps_and_are_zero_on_padding() -> None:
    module = _readout("attention")
    assert isinstance(module, AttentionReadout)
    outputs = torch.randn(3, 7, 6)
    lengths = torch.tensor([7, 3, 1])
    weights = module.weights(outputs, lengths)
    assert weights.shape == (3, 7)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert not weights[1, 3:].any() and not weights[2, 1:].any()
    assert (weights[0] > 0).all() and weights[2, 0] == 1
    expected = torch.einsum("bt,btd->bd", weights, outputs)
    torch.testing.assert_close(module(outputs, lengths), expected)


def test_concat_read_out_is_last_max_and_mean_side_by_side() -> None:
    concat = _readout("concat")
    assert isinstance(concat, ConcatReadout)
    outputs = torch.randn(2, 5, 6)
    lengths = torch.tensor([5, 2])
    parts = [_readout(name)(outputs, lengths) for name in ("last", "max", "mean")]
    torch.testing.assert_close(concat(outputs, lengths), torch.cat(parts, -1))
    assert classifier("gru", "concat").head.in_features == 3 * 8


def test_bidirectional_last_read_out_takes_the_backward_direction_at_step_zero() -> None:
    last = _readout("last", input_size=4, bidirectional=True)
    assert isinstance(last, LastReadout)
    outputs = torch.randn(2, 5, 4)
    summary = last(outputs, torch.tensor([5, 3]))
    torch.testing.assert_close(summary[:, :2], torch.stack([outputs[0, 4, :2], outputs[1, 2, :2]]))
    torch.testing.assert_close(summary[:, 2:], outputs[:, 0, 2:])


@pytest.mark.parametrize("readout", READOUTS)
def test_every_parameter_is_in_exactly_one_layer_group_and_one_optimizer_group(
    readout: str,
) -> None:
    model = classifier("lstm", readout, "model.num_layers=2", "model.lr_decay=2.6")
    groups = model.layer_groups()
    grouped = [id(p) for group in groups for p in group]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    readout_ids = {id(p) for p in model.readout.parameters()}
    assert readout_ids <= {id(p) for p in groups[-1]}  # the read-out learns with the head
    model.scheduler_factory = None
    optimizer = model.configure_optimizers()
    in_optimizer = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(in_optimizer) == sorted(grouped)
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert lrs == pytest.approx([3e-3 / 2.6**3, 3e-3 / 2.6**2, 3e-3 / 2.6, 3e-3])


def test_attention_parameters_get_the_top_learning_rate_under_lr_decay() -> None:
    model = classifier("gru", "attention", "model.lr_decay=2.6")
    model.scheduler_factory = None
    optimizer = model.configure_optimizers()
    for name, param in model.readout.named_parameters():
        (lr,) = [g["lr"] for g in optimizer.param_groups if any(p is param for p in g["params"])]
        assert lr == pytest.approx(3e-3), name
    assert len(list(model.readout.parameters())) == 3  # project weight + bias, score weight
