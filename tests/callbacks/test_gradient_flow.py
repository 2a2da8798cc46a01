import csv
from typing import Any, ClassVar

import pytest
import torch
from lightning import Callback, Trainer

from rnnlab.callbacks.gradient_flow import gradient_per_step
from rnnlab.run.train import train
from tests.conftest import TINY, compose_cfg
from tests.models.conftest import language_model, make_model


def test_gradient_is_reported_per_distance_from_each_sequences_end() -> None:
    torch.manual_seed(0)
    model = make_model(
        ["model=rnn", "model/readout=last", "model.embedding_dim=8", "model.hidden_size=8"]
    )
    ids = torch.randint(1, 30, (2, 12))
    ids[1, 6:] = 0
    batch = {"input_ids": ids, "lengths": torch.tensor([12, 6]), "labels": torch.tensor([1, 0])}
    norms = gradient_per_step(model, batch)
    assert norms.shape == (12,)
    assert (norms > 0).all()
    assert model.training  # the measurement restores the mode it found


def test_the_language_model_meets_the_gradient_flow_protocol() -> None:
    torch.manual_seed(0)
    model = language_model("gru")
    ids = torch.randint(1, 50, (2, 9))
    norms = gradient_per_step(model, {"input_ids": ids, "targets": ids.roll(-1, dims=1)})
    assert norms.shape == (9,)
    assert (norms > 0).all()


@pytest.mark.parametrize("cell", ["rnn", "elman"])
def test_vanilla_rnn_gradient_vanishes_with_distance_while_the_callback_writes_csv_and_png(
    cell, hub_dir, cache_dir, tmp_path
) -> None:
    overrides = [*TINY, f"model={cell}", "model/readout=last", "debug=fdr", "model.hidden_size=32"]
    train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    out = tmp_path / "gradient_flow"
    assert (out / "gradient_flow.png").stat().st_size > 1000
    with (out / "gradient_flow.csv").open() as f:
        rows = list(csv.DictReader(f))
    first = [float(r["grad_norm"]) for r in rows if r["global_step"] == "0"]
    assert first[0] > first[-1]


class BatchEndSteps(Callback):
    """Records trainer.global_step at every training batch end (in-process, so a class list)."""

    steps: ClassVar[list[int]] = []

    def __init__(self) -> None:
        BatchEndSteps.steps.clear()

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        BatchEndSteps.steps.append(trainer.global_step)


@pytest.mark.parametrize("tbptt", [None, 3], ids=["full_bptt", "tbptt"])
def test_measurements_come_every_n_global_steps_even_when_a_batch_takes_several(
    tbptt, hub_dir, cache_dir, tmp_path
) -> None:
    """One measurement at the start, then one at the first batch end at least every_n_steps
    global steps after the previous one, and one at the end. With full BPTT (one step a batch)
    that is exactly 0, n, 2n, ..., and the last step. Under truncated BPTT a batch advances
    global_step by its chunk count, so the measurement comes at the first batch end that reaches
    the interval. Catches `>` for `>=` (every n + 1 steps), `global_step % n == 0` (which under
    truncated BPTT skips the batch ends that jump over a multiple of n), counting batches
    instead of global steps, and a missing first or last measurement."""
    n = 10
    overrides = [
        *TINY,
        "model=lstm",
        "trainer.max_epochs=2",
        "callbacks.early_stopping=null",
        f"callbacks.gradient_flow.every_n_steps={n}",
        "+callbacks.batch_end_steps._target_=tests.callbacks.test_gradient_flow.BatchEndSteps",
    ]
    if tbptt:  # about five chunks a batch: ten batches are plenty
        overrides += [f"model.tbptt_steps={tbptt}", "trainer.limit_train_batches=10"]
    train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    with (tmp_path / "gradient_flow" / "gradient_flow.csv").open() as f:
        steps = sorted({int(r["global_step"]) for r in csv.DictReader(f)})
    batch_ends = BatchEndSteps.steps
    last = batch_ends[-1]
    if tbptt is None:
        assert batch_ends == list(range(1, last + 1))
        assert steps == [*range(0, last + 1, n), *([last] if last % n else [])]
    else:
        assert any(b - a > 1 for a, b in zip(batch_ends, batch_ends[1:]))  # several a batch
        expected = [0]
        for step in batch_ends:
            if step - expected[-1] >= n:
                expected.append(step)
        assert steps == [*expected, *([last] if expected[-1] != last else [])]
