"""The benchmark's functions on tiny synthetic sizes: the right table, sane positive numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnlab import benchmark
from rnnlab.data import TextClassificationDataModule

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


@pytest.mark.parametrize("cell", benchmark.CELLS)
def test_throughput_row_has_positive_rates_and_an_mfu_below_one(cell, batches) -> None:
    row = benchmark.measure_throughput(
        cell, 16, batches, vocab_size=50, pad_id=0, repeats=2, warmup=0, gemm_size=64,
        overrides=TINY_MODEL,
    )  # fmt: skip
    assert row.cell == cell and row.hidden == 16
    for value in (row.lightning, row.hand, row.bare, row.lightning_vs_hand, row.lightning_vs_bare):
        assert np.isfinite(value) and value > 0
    assert 0 < row.mfu < 1 and row.gemm_gflops > 0


@pytest.mark.filterwarnings("ignore:TF32")  # torch.backends.mkldnn.flags sets it too
@pytest.mark.parametrize("cell", benchmark.CELLS)
def test_model_flops_match_the_matmul_flops_torch_counts_in_a_training_step(cell: str) -> None:
    """torch's FlopCounterMode counts every matmul of a real forward + backward of the project's
    model (one layer, the `last` read-out, a binary head). The only difference from the analytic
    count is the gradient of the zero initial state, which autograd skips: one recurrent matmul
    per sequence and gate block. Catches a wrong gate count, (E + H) x H per gate, the backward
    factor of 3 (input and weight gradients), and the head's 2 x H per sequence."""
    from torch.utils.flop_counter import FlopCounterMode

    embedding_dim, hidden, batch, steps = 3, 4, 2, 5
    overrides = [f"model={cell}", "model/readout=last", "model.dropout=0.0"]
    cfg = benchmark.project_config(
        [*overrides, f"model.embedding_dim={embedding_dim}", f"model.hidden_size={hidden}"]
    )
    model = benchmark.build_model(cfg, vocab_size=20, pad_id=0)
    ids = torch.randint(1, 20, (batch, steps), generator=torch.Generator().manual_seed(0))
    lengths = torch.full((batch,), steps)
    # oneDNN's fused LSTM kernel is one opaque op; the native path shows its matmuls
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        model.loss(model(ids, lengths), torch.tensor([0, 1])).backward()
    gates = model.encoder.recurrent_weights()[0].gates
    assert gates == {"rnn": 1, "elman": 1, "gru": 3, "lstm": 4}[cell]
    h0_gradient = 2 * gates * hidden * hidden * batch
    expected = benchmark.model_flops(gates, embedding_dim, hidden, batch * steps, batch)
    assert counter.get_total_flops() == expected - h0_gradient
    # and the hand count for the smallest case: 1 gate, E = H = 1, one token, one sequence:
    # w_x x + w_h h (2 multiply-adds = 4 FLOPs) and the head's w h (2 FLOPs), x 3 with backward
    assert benchmark.model_flops(1, 1, 1, tokens=1, sequences=1) == 3 * (4 + 2)


@pytest.mark.parametrize(("cell", "gates"), [("rnn", 1), ("elman", 1), ("gru", 3), ("lstm", 4)])
def test_the_encoder_reports_its_gate_count_through_the_interface(cell: str, gates: int) -> None:
    cfg = benchmark.project_config([f"model={cell}"])
    encoder = benchmark.build_encoder(cfg, embedding_dim=8, hidden=4)
    assert {w.gates for w in encoder.recurrent_weights()} == {gates}


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
    for key in ("torch", "torch threads", "CPU", "device"):
        assert f"- {key}: " in text
    assert "pipeline / bare" in capsys.readouterr().out


def test_startup_rows_render_with_their_breakdown() -> None:
    report = benchmark.Report({"torch": "x"}, startup={"cold": 30.0, "total": 4.0, "imports": 3.0})
    text = benchmark.to_markdown(report)
    assert "| cold preprocessing (tokenizer training + encoding, fresh caches) | 30.00 |" in text
    assert "| cached restart to first training step | 4.00 |" in text
    assert "interpreter + imports | 3.00 |" in text and "Tokens" not in text
