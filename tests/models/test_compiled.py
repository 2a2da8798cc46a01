"""A hand-written cell run through torch.compile in chunks of steps (`model.compile_chunk`)
computes what the same cell computes eagerly, for every shipped hand-written cell."""

import functools

import pytest
import torch

from rnnlab.models.components.compiled import compile_stats
from rnnlab.models.components.encoder import TorchRNNEncoder
from rnnlab.utils.errors import ConfigError
from tests.models.conftest import ENCODERS, classifier, padded_batch

# the registry: every cell preset whose recurrence is Python (not torch's fused kernels)
HAND_WRITTEN = [c for c in ENCODERS if not isinstance(classifier(c).encoder, TorchRNNEncoder)]
# lengths that leave a remainder after the first step and whole chunks of 3, and a row of one
LENGTHS = [23, 20, 11, 5, 1]
CHUNK = 3
close = functools.partial(torch.testing.assert_close, rtol=1e-4, atol=1e-5)  # sums reassociate


def _pair(cell: str) -> tuple:
    """The cell eager and compiled, two layers, bidirectional, with the same weights."""
    extra = ["model.num_layers=2", "model.bidirectional=true"]
    eager = classifier(cell, "max", *extra)
    compiled = classifier(cell, "max", *extra, f"model.compile_chunk={CHUNK}")
    compiled.load_state_dict(eager.state_dict())
    return eager.eval(), compiled.eval()  # no dropout: the two must see the same inputs


def _logits_and_grads(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    embedded = model.embed(batch)[0].detach().requires_grad_()
    logits = model.classify_embedded(embedded, batch["lengths"])
    params = [*model.encoder.parameters(), *model.readout.parameters(), *model.head.parameters()]
    return logits, list(torch.autograd.grad(logits.sum(), [embedded, *params]))


def _two_calls(encoder, x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs and states of reading x (no padding) in two calls, the state carried from
    the first to the second."""
    first, state = encoder(x[:, :8], torch.full((len(x),), 8))
    second, end = encoder(x[:, 8:], torch.full((len(x),), x.size(1) - 8), state)
    return [first, second, *torch.utils._pytree.tree_leaves((state, end))]


@pytest.mark.parametrize("cell", HAND_WRITTEN)
def test_compiled_chunks_equal_the_eager_cell_in_outputs_states_and_every_gradient(cell) -> None:
    """Catches padding or a chunk boundary reaching a sequence's outputs, the reverse direction
    read in the wrong order, gradients (the parameters' and the inputs', which the gradient-flow
    callback reads) unlike the eager cell's, a carried state (truncated BPTT, the language model)
    ignored or returned wrong, a difference under CPU bf16 autocast, and a graph compiled again
    for each batch size or place in the sequence."""
    eager, compiled = _pair(cell)
    graphs_before = compile_stats()["compile_graphs"]
    batch = padded_batch(LENGTHS)
    expected, expected_grads = _logits_and_grads(eager, batch)
    logits, grads = _logits_and_grads(compiled, batch)
    close(logits, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        close(got, want)
    x = eager.embed(padded_batch([17] * 3))[0]
    for got, want in zip(
        _two_calls(compiled.encoder, x), _two_calls(eager.encoder, x), strict=True
    ):
        close(got, want)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = eager(eager.inputs(batch), batch["lengths"])
        close(compiled(compiled.inputs(batch), batch["lengths"]), mixed)
    # one graph per input width (the embedding's, the layer below's) for every batch size
    assert compile_stats()["compile_graphs"] - graphs_before <= 2


def test_evaluation_without_gradients_uses_a_compiled_graph_of_its_own_and_agrees() -> None:
    """Catches the graph compiled for training being reused without gradients (or failing)."""
    eager, compiled = _pair(HAND_WRITTEN[0])
    batch = padded_batch(LENGTHS)
    with torch.inference_mode():
        close(
            compiled(compiled.inputs(batch), batch["lengths"]),
            eager(eager.inputs(batch), batch["lengths"]),
        )


def test_a_bad_chunk_size_is_refused_and_torchs_fused_cells_have_nothing_to_compile() -> None:
    with pytest.raises(ConfigError, match=r"^model.compile_chunk=0: null \(eager\) or an integer"):
        classifier(HAND_WRITTEN[0], "max", "model.compile_chunk=0")
    encoder = classifier("lstm").encoder
    encoder.compile_recurrence(CHUNK)
    assert encoder.compile_chunk is None
