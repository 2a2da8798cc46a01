"""The synthetic long-range tasks: what the generators draw, and that their experiment presets
(adding, copy, selective copying) compose, train through train.py's task and evaluate from their
checkpoints."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate

from rnnlab.data.synthetic import (
    BLANK,
    DELIMITER,
    FIRST_SYMBOL,
    AddingDataModule,
    CopyDataModule,
    SelectiveCopyDataModule,
    SyntheticDataModule,
)
from rnnlab.models import build_model
from rnnlab.models.build import model_settings
from rnnlab.models.components.task import IGNORE
from rnnlab.run.evaluate import evaluate
from rnnlab.run.train import train
from rnnlab.utils.errors import ConfigError
from tests.conftest import CONF, compose_cfg
from tests.models.conftest import ENCODERS, VARIANTS


def _data_class(experiment: str) -> type:
    cfg = compose_cfg("train", [f"experiment={experiment}"], CONF, CONF)
    return get_class(cfg.data._target_)


# the registry: every experiment preset whose data module generates a synthetic task
SYNTHETIC_PRESETS = sorted(
    p.stem
    for p in (CONF / "experiment").glob("*.yaml")
    if issubclass(_data_class(p.stem), SyntheticDataModule)
)
SMALL = {"num_train": 300, "num_val": 50, "num_test": 60}


def splits(dm: SyntheticDataModule) -> dict[str, dict[str, torch.Tensor]]:
    dm.setup("fit")
    return {name: split.tensors for name, split in dm.splits.items()}


def test_adding_marks_one_step_in_each_half_and_the_target_is_their_sum() -> None:
    data = splits(AddingDataModule(seq_len=11, **SMALL))["train"]
    values, markers = data["inputs"][..., 0], data["inputs"][..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    half = 11 // 2
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    torch.testing.assert_close(data["labels"], (values * markers).sum(1))
    assert (data["lengths"] == 11).all()


def test_copy_gives_the_symbols_back_after_the_delay_and_scores_only_there() -> None:
    k, delay = 4, 6
    data = splits(CopyDataModule(delay=delay, copy_len=k, **SMALL))["val"]
    ids, labels = data["input_ids"], data["labels"]
    assert ids.shape == labels.shape == (50, 2 * k + delay + 1)
    symbols = ids[:, :k] - FIRST_SYMBOL
    assert ((symbols >= 0) & (symbols < 8)).all()
    assert (ids[:, k : k + delay] == BLANK).all() and (ids[:, k + delay] == DELIMITER).all()
    assert (ids[:, -k:] == BLANK).all()  # the answer steps give nothing away
    assert torch.equal(labels[:, -k:], symbols)
    assert (labels[:, :-k] == IGNORE).all()


def test_selective_copying_scatters_the_symbols_in_order_and_asks_for_them_at_the_end() -> None:
    """Catches symbols at fixed steps (which a time-invariant cell could learn to pick), symbols
    shuffled on the way in, and labels anywhere but the recall steps."""
    k, length = 5, 30
    data = splits(SelectiveCopyDataModule(seq_len=length, copy_len=k, alphabet=6, **SMALL))
    ids, labels = data["train"]["input_ids"], data["train"]["labels"]
    assert ids.shape == labels.shape == (SMALL["num_train"], length + k)
    noise, answers = ids[:, :length], ids[:, length:]
    placed = noise >= FIRST_SYMBOL
    assert (placed.sum(1) == k).all() and (noise[~placed] == BLANK).all()
    assert (answers == DELIMITER).all() and (labels[:, :length] == IGNORE).all()
    assert torch.equal(noise[placed].view(-1, k) - FIRST_SYMBOL, labels[:, length:])
    assert ((labels[:, length:] >= 0) & (labels[:, length:] < 6)).all()
    first_steps = placed.float().argmax(1)
    assert len(first_steps.unique()) > length // 3  # where the first symbol sits varies


@pytest.mark.parametrize(
    "make",
    [lambda seed: AddingDataModule(seq_len=8, seed=seed, **SMALL)]
    + [lambda seed: CopyDataModule(delay=2, copy_len=6, seed=seed, **SMALL)]
    + [lambda seed: SelectiveCopyDataModule(seq_len=12, copy_len=6, seed=seed, **SMALL)],
    ids=["adding", "copy", "selective_copy"],
)
def test_each_seed_gives_the_same_data_and_train_val_test_never_share_an_example(make) -> None:
    first, again, other = splits(make(1)), splits(make(1)), splits(make(2))
    for name in first:
        for key in first[name]:
            assert torch.equal(first[name][key], again[name][key])
    assert not torch.equal(first["train"]["labels"], other["train"]["labels"])
    inputs_key = "inputs" if "inputs" in first["train"] else "input_ids"
    rows = {
        name: {row.numpy().tobytes() for row in split[inputs_key]} for name, split in first.items()
    }
    assert len(rows["train"]) == SMALL["num_train"]  # no repeats within train either
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]
    assert not rows["val"] & rows["test"]


def test_the_data_facts_size_the_model() -> None:
    adding = AddingDataModule(seq_len=8, **SMALL).meta
    assert adding.input_size == 2 and adding.num_classes == 0
    copy = CopyDataModule(delay=2, copy_len=6, **SMALL).meta
    assert copy.input_size == 0 and copy.num_classes == 8
    assert copy.vocab_size == FIRST_SYMBOL + 8
    assert copy.data_config["_target_"] == "rnnlab.data.synthetic.CopyDataModule"
    # the steps to bridge and what a blind answer scores
    assert (adding.span, adding.chance) == (8, pytest.approx(1 / 6))
    assert (copy.span, copy.chance) == (2, 1 / 8)
    selective = SelectiveCopyDataModule(seq_len=20, copy_len=6, alphabet=4, **SMALL).meta
    assert (selective.span, selective.chance) == (20, 1 / 4)


def test_batches_come_whole_from_the_loaders() -> None:
    dm = AddingDataModule(seq_len=8, batch_size=16, **SMALL)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"].shape[1:] == (8, 2) and batch["labels"].dtype == torch.float32
    assert sum(len(b["labels"]) for b in dm.test_dataloader()) == SMALL["num_test"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: AddingDataModule(seq_len=1), "data.seq_len=1: an integer >= 2"),
        (lambda: CopyDataModule(delay=-1), "data.delay=-1: an integer >= 0"),
        (lambda: CopyDataModule(copy_len=2), "data.copy_len=2: longer"),
        (lambda: CopyDataModule(num_train=0), "data.num_train=0: an integer >= 1"),
        (
            lambda: SelectiveCopyDataModule(seq_len=3, copy_len=4, **SMALL),
            r"data.seq_len=3: an integer >= data.copy_len \(4\)",
        ),
    ],
)
def test_bad_settings_name_the_key(make, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


RUN = [
    "trainer.accelerator=cpu",
    "trainer.max_steps=4",
    "trainer.max_epochs=-1",
    "trainer.val_check_interval=2",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.progress_bar=null",
    "model.hidden_size=8",
    "model.embedding_dim=4",
    "data.num_train=64",
    "data.num_val=16",
    "data.num_test=16",
    "data.batch_size=16",
]
SETTINGS = {
    "adding": ["data.seq_len=6"],
    "copy": ["data.delay=2", "data.copy_len=8"],
    "selective_copy": ["data.seq_len=12", "data.copy_len=4"],
}


@pytest.mark.parametrize("preset", SYNTHETIC_PRESETS)
def test_presets_train_test_and_evaluate_from_the_checkpoint(preset, tmp_path, capsys) -> None:
    overrides = [f"experiment={preset}", "model=lstm", *RUN, *SETTINGS.get(preset, [])]
    cfg = compose_cfg("train", overrides, tmp_path, tmp_path / "cache")
    metrics = train(cfg)
    metric, mode = get_class(cfg.model.task._target_).objective
    assert cfg.objective.metric == metric and cfg.objective.mode == mode
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert f"{metric}_best" in saved and (tmp_path / "checkpoints" / "best.ckpt").is_file()
    # what the lab report draws: the length, chance and the preset's solved threshold
    meta = instantiate(cfg.data).meta
    assert (saved["span"], saved["chance"]) == (meta.span, meta.chance)
    solved_at = build_model(model_settings(cfg.model)[0], meta).task.solved_at
    assert solved_at is not None and saved["solved_at"] == solved_at
    assert saved["test/solved"] in (0.0, 1.0)
    assert {"test/loss", metric.replace("val/", "test/")} <= metrics.keys()
    assert np.isfinite(metrics["test/loss"])
    # eval.py rebuilds the generator from the checkpoint and scores its test split again
    ckpt = f"ckpt_path={tmp_path / 'checkpoints' / 'best.ckpt'}"
    evaluated = evaluate(compose_cfg("eval", [ckpt, *RUN[:1]], tmp_path / "eval", tmp_path))
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-6)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        evaluate(compose_cfg("eval", [ckpt, "data.path=/elsewhere"], tmp_path / "e2", tmp_path))
    assert re.fullmatch(
        r"error: data.path='/elsewhere': .* has no such key; it takes: .*\n",
        capsys.readouterr().err,
    )


def test_gradient_flow_is_measured_through_the_input_projection(tmp_path) -> None:
    overrides = ["experiment=adding", "model=rnn", *RUN, "data.seq_len=6"]
    train(compose_cfg("train", overrides, tmp_path, tmp_path / "cache"))
    rows = (tmp_path / "gradient_flow" / "gradient_flow.csv").read_text().splitlines()
    assert rows[0] == "global_step,distance_from_end,grad_norm"
    assert {int(r.split(",")[1]) for r in rows[1:]} == set(range(6))


@pytest.mark.parametrize("preset", SYNTHETIC_PRESETS)
@pytest.mark.parametrize("cell", ENCODERS + VARIANTS)
def test_every_cell_preset_builds_for_every_synthetic_task(preset, cell, tmp_path) -> None:
    overrides = [f"experiment={preset}", f"model={cell}", *RUN, *SETTINGS.get(preset, [])]
    cfg = compose_cfg("train", overrides, tmp_path, tmp_path / "cache")
    data = instantiate(cfg.data)
    data.setup("fit")
    model = build_model(model_settings(cfg.model)[0], data.meta)
    batch = next(iter(data.train_dataloader()))
    model.loss(model(model.inputs(batch), batch["lengths"]), batch["labels"]).backward()
    assert all(p.grad is not None for p in model.parameters())
