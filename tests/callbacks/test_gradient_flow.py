import csv

import pytest
import torch

from rnnlab.callbacks.gradient_flow import gradient_per_step
from rnnlab.tasks.train import train
from tests.conftest import TINY, compose_cfg
from tests.models.conftest import make_model


def test_gradient_is_reported_per_distance_from_each_reviews_end() -> None:
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


def test_measurements_keep_their_cadence_when_a_batch_takes_several_steps(
    hub_dir, cache_dir, tmp_path
) -> None:
    overrides = [
        *TINY,
        "model=lstm",
        "model.tbptt_steps=3",
        "trainer.max_epochs=2",
        "callbacks.gradient_flow.every_n_steps=20",
    ]
    train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    with (tmp_path / "gradient_flow" / "gradient_flow.csv").open() as f:
        steps = sorted({int(r["global_step"]) for r in csv.DictReader(f)})
    assert len(steps) >= 5
    assert all(b - a <= 20 + 20 for a, b in zip(steps, steps[1:]))
