"""The benchmark's functions on tiny synthetic sizes: the right table, sane positive numbers."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from rnnlab.data import TextClassificationDataModule
from rnnlab.models import RNNClassifier
from rnnlab.models.components.encoder import StackedEncoder
from rnnlab.tools import benchmark
from tests.models.conftest import ENCODERS, TORCH_TWIN_CELLS, VectorLayer

TINY_MODEL = ["model.embedding_dim=16"]


@pytest.fixture(scope="module")
def batches() -> list[dict]:
    reviews = benchmark.synthetic_reviews(200, vocab_size=50, max_len=24, seed=1)
    return benchmark.take(benchmark.bucketed_loader(reviews, batch_size=8, pad_id=0), 3)


def test_synthetic_reviews_have_imdb_like_lengths() -> None:
    lengths = np.diff(benchmark.synthetic_reviews(5000, vocab_size=50, max_len=400).offsets)
    assert 180 < np.median(lengths) < 240 and 240 < lengths.mean() < 320
    assert lengths.min() >= 10


def test_batches_are_bucketed_and_padded_to_their_own_longest(batches) -> None:
    assert len(batches) == 3
    for batch in batches:
        assert batch["input_ids"].shape[1] == int(batch["lengths"].max()) <= 24


@pytest.mark.parametrize("cell", ENCODERS)
def test_throughput_row_has_positive_rates_and_an_mfu_below_one(cell, batches) -> None:
    row = benchmark.measure_throughput(
        cell, 16, batches, vocab_size=50, pad_id=0, repeats=2, warmup=0, gemm_size=64,
        overrides=TINY_MODEL,
    )  # fmt: skip
    assert row.cell == cell and row.hidden == 16
    for value in (row.lightning, row.hand, row.bare, row.lightning_vs_hand, row.lightning_vs_bare):
        assert np.isfinite(value) and value > 0
    assert 0 < row.mfu < 1 and row.gemm_gflops > 0
    if row.compiled is not None:  # a hand-written cell, compiled in chunks
        assert row.compiled > 0 and row.compiled_vs_bare > 0


def _classifier(cell: str, *extra: str, embedding_dim: int = 3, hidden: int = 4) -> RNNClassifier:
    """The project's model, one layer, the `last` read-out and a binary head (one logit)."""
    cfg = benchmark.project_config(
        [f"model={cell}", "model/readout=last", "model.dropout=0.0", *extra]
        + [f"model.embedding_dim={embedding_dim}", f"model.hidden_size={hidden}"]
    )
    return benchmark.build_model(cfg, vocab_size=20, pad_id=0)


def _step_flops(model: RNNClassifier, batch: int, steps: int) -> int:
    """What FlopCounterMode counts in one training step on an unpadded (batch, steps) batch."""
    ids = torch.randint(1, 20, (batch, steps), generator=torch.Generator().manual_seed(0))
    with (
        torch.backends.mkldnn.flags(enabled=False, allow_tf32=None),
        FlopCounterMode(display=False) as counter,
    ):
        model.loss(model(ids, torch.full((batch,), steps)), torch.arange(batch) % 2).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("cell", ENCODERS)
def test_counted_flops_predict_a_training_step_of_any_length_and_batch(cell: str) -> None:
    """The (per token, per sequence) pair, fitted on two lengths, is exact at a third shape."""
    model = _classifier(cell, "model.num_layers=2", "model.bidirectional=true", hidden=6)
    per_token, per_sequence = benchmark.counted_flops(model)
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradients
    assert per_token > 0
    assert per_token * 3 * 11 + per_sequence * 3 == _step_flops(model, batch=3, steps=11)


@pytest.mark.parametrize("cell", TORCH_TWIN_CELLS)
def test_counted_flops_of_a_torch_shaped_cell_are_its_matmuls_by_hand(cell: str) -> None:
    """oneDNN's fused LSTM is one op FlopCounterMode has no formula for (with it on, torch
    2.13 counts only the head); with it off, every cell shaped as nn.RNN / LSTM / GRU (a brought
    cell may gate its state differently, so only the count's scaling is checked for it) is
    counted in full:
    per token, gates x (E + H) x H multiply-adds (2 FLOPs each), per sequence the head's H; x 3
    with backward (input and weight gradients), less the gradient of the zero initial state,
    which autograd skips: one H x H matmul per gate block and sequence."""
    embedding_dim, hidden = 3, 4
    model = _classifier(cell, embedding_dim=embedding_dim, hidden=hidden)
    gates = model.encoder.recurrent_weights()[0].gates
    per_token, per_sequence = benchmark.counted_flops(model)
    assert per_token == 3 * gates * 2 * (embedding_dim + hidden) * hidden
    assert per_sequence == 3 * 2 * hidden - 2 * gates * hidden * hidden


class VectorEncoder(StackedEncoder):
    """The cell as a conf/model/<cell>.yaml would name it; it reports no recurrent matrices."""

    def __init__(self, input_size: int, hidden_size: int, elementwise: bool = False, **kw) -> None:
        layer = functools.partial(VectorLayer, elementwise=elementwise)
        super().__init__(layer, input_size, hidden_size, **kw)


VECTOR_CELL = f"model.encoder._target_={__name__}.VectorEncoder"  # on top of model=gru


def _vector_row(batches: list[dict], *extra: str) -> benchmark.ThroughputRow:
    return benchmark.measure_throughput(
        "gru", 16, batches, vocab_size=50, pad_id=0, repeats=1, warmup=0, gemm_size=64,
        overrides=[*TINY_MODEL, VECTOR_CELL, *extra],
    )  # fmt: skip


def test_a_cell_with_a_vector_recurrent_weight_gets_a_counted_mfu(batches) -> None:
    """FlopCounterMode counts its input matmul (x 3 with backward) and the head's; the
    elementwise recurrence u * h is not a matmul, as no cell's gate arithmetic is."""
    model = _classifier("gru", VECTOR_CELL, embedding_dim=3, hidden=4)
    assert model.encoder.recurrent_weights() == []
    assert benchmark.counted_flops(model) == (3 * 2 * 3 * 4, 3 * 2 * 4)
    assert 0 < _vector_row(batches).mfu < 1


def test_a_cell_without_a_matmul_gets_a_dash_for_mfu_instead_of_crashing(batches) -> None:
    row = _vector_row(batches, "+model.encoder.elementwise=true")
    assert row.mfu is None and row.lightning > 0
    assert "| — | " in benchmark.to_markdown(benchmark.Report({}, throughput=[row]))


def test_bucketing_pads_less_than_unsorted_batches_and_fixed_length() -> None:
    lengths = np.diff(benchmark.synthetic_reviews(3000, vocab_size=50, max_len=400).offsets)
    rows = benchmark.padding_shares(lengths, batch_size=64, max_lens=[200, 400])
    assert [r.max_len for r in rows] == [200, 400]
    for row in rows:
        assert 0 <= row.bucketed < row.unbucketed <= row.fixed < 1


def test_fixed_length_share_is_exact_for_known_lengths() -> None:
    (row,) = benchmark.padding_shares(np.array([1, 2, 3, 4]), batch_size=2, max_lens=[4])
    assert row.fixed == pytest.approx(1 - 10 / 16)
    assert row.bucketed == pytest.approx(1 - 10 / 12)  # batches {4, 3} and {2, 1}


@pytest.mark.slow  # two fresh interpreters importing torch + Lightning: ~10 s each here
def test_startup_times_cold_preprocessing_and_cached_restart(hub_dir, tmp_path) -> None:
    data = {"path": str(hub_dir), "cache_dir": str(tmp_path), "vocab_size": 100, "batch_size": 8}
    assert benchmark.cold_preprocessing_seconds(str(hub_dir), vocab_size=100) > 0
    TextClassificationDataModule(**data).prepare_data()
    times = benchmark.cached_restart(data, ["model.hidden_size=16", *TINY_MODEL], runs=1)
    assert set(times) == {"imports", "data", "first step", "total"}
    assert all(t > 0 for t in times.values())
    assert times["total"] == pytest.approx(times["imports"] + times["data"] + times["first step"])


def test_cli_prints_and_writes_every_table_as_markdown(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("IMDB_DIR", raising=False)  # synthetic batches
    out = tmp_path / "bench.md"
    argv = ["--cells", "gru", "--hidden", "16", "--batches", "2", "--repeats", "1", "--warmup",
            "0", "--batch-size", "8", "--max-len", "24", "--gemm-size", "64", "--restarts", "0",
            "--padding-max-len", "24", "--out", str(out), "--override", *TINY_MODEL]  # fmt: skip
    assert benchmark.main(argv) == 0
    text = out.read_text()
    assert "| cell | hidden | Lightning | hand loop | Lightning / hand |" in text
    assert "| gru | 16 |" in text and "| 24 |" in text
    assert "| compiled / bare |" in text  # torch's fused GRU has nothing to compile: a dash
    for key in ("torch", "torch threads", "CPU", "device"):
        assert f"- {key}: " in text
    printed = capsys.readouterr().out  # a terminal table (its headers wrap to the width)
    assert "Lightning" in printed and "│ gru " in printed


def test_startup_rows_render_with_their_breakdown() -> None:
    report = benchmark.Report({"torch": "x"}, startup={"cold": 30.0, "total": 4.0, "imports": 3.0})
    text = benchmark.to_markdown(report)
    assert "| cold preprocessing (tokenizer training + encoding, fresh caches) | 30.00 |" in text
    assert "| cached restart to first training step | 4.00 |" in text
    assert "interpreter + imports | 3.00 |" in text and "Tokens" not in text
