"""The cells whose recurrence runs as a parallel scan (minGRU, minLSTM, the LRU) and the cells
whose state stops at each row's own length (those and the IndRNN): the scan equals the
step-by-step loop, padding reaches neither outputs nor state, a carried state continues a
sequence exactly, and the LRU's eigenvalues stay inside the unit circle."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from rnnlab.models.components.lru import LRULayer
from rnnlab.models.components.scan import MODES
from tests.conftest import CONF
from tests.models.conftest import ENCODERS, classifier


def _encoder_class(cell: str) -> type:
    return get_class(OmegaConf.load(CONF / "model" / f"{cell}.yaml").encoder._target_)


def _has_parallel_mode(cell: str) -> bool:
    """Whether the cell's encoder takes `mode` (scan.MODES)."""
    return "mode" in inspect.signature(_encoder_class(cell)).parameters


# read from conf/model/*.yaml and each preset's encoder class
SCAN_CELLS = [cell for cell in ENCODERS if _has_parallel_mode(cell)]
SCAN_MODES = [mode for mode in MODES if mode != "sequential"]
STATE_AT_LENGTH = [c for c in ENCODERS if getattr(_encoder_class(c), "state_at_length", False)]


def _encoder(cell: str, *extra: str, layers: int = 2):
    """A float64 two-layer encoder (float64: the two modes agree to rounding, not to float32's)."""
    model = classifier(cell, "max", f"model.num_layers={layers}", *extra)
    return model.encoder.double().eval()


def _small_chunks(cell: str) -> list[str]:
    """Chunks and blocks of 4 steps, so a 13-step sequence crosses three of their boundaries."""
    options = inspect.signature(_encoder_class(cell)).parameters
    return [f"model.encoder.{key}=4" for key in ("chunk_size", "block_size") if key in options]


def _random_state(encoder, batch: int) -> tuple:
    """A carried state of either sign (complex for the LRU): what a previous chunk hands on."""
    _, states = encoder(torch.randn(batch, 5, 8, dtype=torch.float64), torch.full((batch,), 5))
    return tuple(torch.randn_like(s) for s in states)


def test_the_registry_finds_the_scan_cells() -> None:
    """Catches a scan cell dropping out of the parametrisation (a renamed option or preset)."""
    assert {"mingru", "minlstm", "lru"} <= set(SCAN_CELLS)
    assert "indrnn" in STATE_AT_LENGTH and "indrnn" not in SCAN_CELLS


@pytest.mark.parametrize("mode", SCAN_MODES)
@pytest.mark.parametrize("cell", SCAN_CELLS)
def test_each_scan_mode_equals_the_step_by_step_loop_in_outputs_state_and_gradients(
    cell: str, mode: str
) -> None:
    """Catches a scan that drops the initial state, mishandles its sign, breaks at a chunk
    boundary or differs from the recurrence it stands for in value or in gradient."""
    parallel = _encoder(cell, f"model.encoder.mode={mode}", *_small_chunks(cell))
    sequential = _encoder(cell, "model.encoder.mode=sequential")
    sequential.load_state_dict(parallel.state_dict())
    x = torch.randn(3, 13, 8, dtype=torch.float64)
    lengths = torch.tensor([13, 6, 1])
    state = _random_state(parallel, 3)
    results = []
    for encoder in (parallel, sequential):
        outputs, final = encoder(x, lengths, state)
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(outputs.shape, generator=gen, dtype=outputs.dtype)
        loss = (outputs * weight).sum() + sum(s.abs().square().sum() for s in final)
        encoder.zero_grad()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in encoder.named_parameters()}
        results.append((outputs, final, grads))
    (out_p, state_p, grad_p), (out_s, state_s, grad_s) = results
    assert torch.allclose(out_p, out_s, atol=1e-10, rtol=1e-8)
    for layer_p, layer_s in zip(state_p, state_s):
        assert torch.allclose(layer_p, layer_s, atol=1e-10, rtol=1e-8)
    assert grad_p.keys() == grad_s.keys()
    for name in grad_p:
        assert torch.allclose(grad_p[name], grad_s[name], atol=1e-9, rtol=1e-7), name


def _modes(cell: str) -> list[list[str]]:
    """Every mode of a scan cell, as overrides; the one way of any other cell."""
    return [[f"model.encoder.mode={mode}"] for mode in MODES] if cell in SCAN_CELLS else [[]]


@pytest.mark.parametrize("cell", STATE_AT_LENGTH)
def test_a_rows_outputs_and_state_ignore_padding_after_its_end(cell: str) -> None:
    """Catches a final state read at step T instead of at the row's own last step, and padding
    leaking into a row's outputs through the scan (in every mode)."""
    for mode in _modes(cell):
        encoder = _encoder(cell, *mode, *_small_chunks(cell))
        row = torch.randn(1, 7, 8, dtype=torch.float64)
        alone, alone_state = encoder(row, torch.tensor([7]))
        batch = torch.randn(2, 30, 8, dtype=torch.float64) * 5  # junk after the row's end
        batch[0, :7] = row[0]
        together, together_state = encoder(batch, torch.tensor([7, 30]))
        assert torch.allclose(together[0, :7], alone[0], atol=1e-10, rtol=1e-8), mode
        for layer_alone, layer_together in zip(alone_state, together_state):
            assert torch.allclose(layer_together[0], layer_alone[0], atol=1e-10, rtol=1e-8), mode


@pytest.mark.parametrize("cell", STATE_AT_LENGTH)
def test_chunks_with_the_carried_state_equal_the_whole_sequence(cell: str) -> None:
    """Catches a carried state that does not continue the sequence (truncated BPTT, the
    language model and generation feed it back), in every mode."""
    for mode in _modes(cell):
        encoder = _encoder(cell, *mode, *_small_chunks(cell))
        x = torch.randn(2, 17, 8, dtype=torch.float64)
        whole, whole_state = encoder(x, torch.tensor([17, 17]))
        first, state = encoder(x[:, :6], torch.tensor([6, 6]))
        second, state = encoder(x[:, 6:], torch.tensor([11, 11]), state)
        assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-10, rtol=1e-8), mode
        for carried, direct in zip(state, whole_state):
            assert torch.allclose(carried, direct, atol=1e-10, rtol=1e-8), mode


def test_lru_eigenvalues_stay_inside_the_unit_circle_for_any_nu() -> None:
    """Catches a parameterisation that lets |lambda| reach 1 (a recurrence that no longer
    decays), float32 rounding included."""
    layer = LRULayer(4, 64)
    with torch.no_grad():
        layer.nu_log.copy_(torch.linspace(-40, 10, 64))
    radius = layer.log_lambda().exp().abs()
    assert (radius < 1).all() and (radius >= 0).all()


@pytest.mark.parametrize(
    ("r_min", "r_max", "max_phase"), [(0.9, 0.999, 2 * math.pi), (0.0, 1.0, math.pi / 10)]
)
def test_lru_ring_initialisation_puts_lambda_on_its_ring(
    r_min: float, r_max: float, max_phase: float
) -> None:
    """Catches a ring initialisation off its ring or its phase range, and one whose gamma is not
    the normalisation sqrt(1 - |lambda|^2)."""
    torch.manual_seed(0)
    layer = LRULayer(4, 2000, r_min=r_min, r_max=r_max, max_phase=max_phase)
    lam = layer.log_lambda().detach().exp()
    radius = lam.abs()
    assert (radius >= r_min - 1e-6).all() and (radius <= r_max + 1e-6).all() and (radius < 1).all()
    phase = layer.theta_log.detach().exp()
    assert (phase >= 0).all() and (phase <= max_phase).all()
    # |lambda|^2 is uniform on [r_min^2, r_max^2]: its mean lies halfway
    assert abs(radius.square().mean() - (r_min**2 + r_max**2) / 2) < 0.02
    gamma = layer.gamma_log.detach().exp()
    assert torch.allclose(gamma, (1 - radius.square()).sqrt(), atol=1e-5, rtol=1e-4)
