"""The classifier: binary and multi-class heads and losses, its config checks, its optimizer
(schedule length, discriminative learning rates) and gradual unfreezing."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from lightning import Trainer

from rnnlab.models import RNNClassifier
from rnnlab.run.train import build_data_and_model
from rnnlab.utils import ConfigError
from tests.conftest import TINY as TINY_RUN
from tests.conftest import compose_cfg, item_loader, quiet_trainer
from tests.models.conftest import (
    ENCODERS,
    FOUR_CLASSES,
    classifier,
    keyword_items,
    padded_batch,
)

LEARN_FAST = ["model.optimizer.lr=1e-2", "model.optimizer.weight_decay=0.0", "model.scheduler=null"]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_model_overfits_a_tiny_batch(encoder: str) -> None:
    model = classifier(
        encoder, "max", "model.hidden_size=32", "model.embedding_dim=16", *LEARN_FAST
    )
    loader = item_loader(keyword_items(), 32)
    quiet_trainer(max_epochs=60).fit(model, loader)
    batch = next(iter(loader))
    with torch.no_grad():
        predicted = model(batch["input_ids"], batch["lengths"]) > 0
    assert (predicted.long() == batch["labels"]).float().mean() == 1.0


def test_binary_data_gives_one_logit_and_binary_cross_entropy() -> None:
    model = classifier("gru")
    batch = padded_batch([6, 3, 5])
    loss, logits = model._shared_step(batch)
    assert logits.shape == (3,) and batch["labels"].dtype == torch.int64
    expected = F.binary_cross_entropy_with_logits(logits, batch["labels"].float())
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(model.task.probabilities(logits), torch.sigmoid(logits))
    assert set(model.val_metrics.keys()) == {"val/acc", "val/f1", "val/auroc"}


def test_four_classes_give_four_logits_and_cross_entropy() -> None:
    model = classifier("gru", meta=FOUR_CLASSES)
    batch = padded_batch([6, 3, 5, 2], num_classes=4)
    loss, logits = model._shared_step(batch)
    assert logits.shape == (4, 4) and model.head.out_features == 4
    torch.testing.assert_close(loss, F.cross_entropy(logits, batch["labels"]))
    torch.testing.assert_close(model.task.probabilities(logits).sum(-1), torch.ones(4))
    assert set(model.val_metrics.keys()) == {"val/acc", "val/f1"}


def test_four_class_fit_learns_a_separable_toy_problem_and_logs_acc_and_f1() -> None:
    model = classifier("gru", "max", "model.hidden_size=16", *LEARN_FAST, meta=FOUR_CLASSES)
    loader = item_loader(keyword_items(n=32, num_classes=4), 32)
    trainer = quiet_trainer(max_epochs=60, num_sanity_val_steps=0, check_val_every_n_epoch=60)
    trainer.fit(model, loader, loader)
    metrics = trainer.callback_metrics
    assert metrics["val/acc"] == 1.0 and metrics["val/f1"] == 1.0
    assert "val/auroc" not in metrics


def test_a_single_label_name_is_refused() -> None:
    one = FOUR_CLASSES.__class__(vocab_size=60, pad_id=0, tokenizer_json="{}", label_names=("a",))
    with pytest.raises(ConfigError, match=r"^data\.num_classes=1: at least 2"):
        classifier("gru", meta=one)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden_size=0", r"^model\.hidden_size=0: "),
        ("model.embedding_dim=-1", r"^model\.embedding_dim=-1: "),
        ("model.dropout=1.0", r"^model\.dropout=1\.0: "),
        ("model.lr_decay=0.5", r"^model\.lr_decay=0\.5: "),
        ("model.encoder.nonlinearity=sigmoid", r"^model\.encoder\.nonlinearity='sigmoid': "),
    ],
)
def test_bad_model_settings_name_the_key_and_value(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        classifier("rnn", "max", override)
    assert "\n" not in str(err.value)


def test_one_cycle_schedule_gets_the_run_length_from_the_trainer() -> None:
    model = classifier("gru")
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(model, item_loader(keyword_items(), 8))
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 8


def test_uniform_embedding_init_is_small_and_keeps_the_pad_row_zero() -> None:
    weight = classifier("gru", "max", "model.embedding.init_range=0.05").embedding.weight
    assert weight.abs().max() <= 0.05 and (weight[0] == 0).all() and weight[1:].abs().sum() > 0


def _fit_tiny(max_epochs: int, *extra: str) -> tuple[RNNClassifier, RNNClassifier, Trainer]:
    """A model fitted on the tiny data, an untouched copy of its initial weights, the trainer."""
    model = classifier("lstm", "max", *extra)
    initial = classifier("lstm", "max", *extra)
    initial.load_state_dict(model.state_dict())
    trainer = quiet_trainer(max_epochs=max_epochs)
    trainer.fit(model, item_loader(keyword_items(), 8))
    return model, initial, trainer


def test_discriminative_lr_gives_each_layer_group_below_the_head_a_decayed_one_cycle_peak() -> None:
    model, _, trainer = _fit_tiny(
        1, "model.num_layers=2", "model.lr_decay=2.0", "model.optimizer.lr=0.1"
    )
    groups = trainer.optimizers[0].param_groups
    # embedding, recurrent layer 0, recurrent layer 1, read-out + head
    assert [g["max_lr"] for g in groups] == pytest.approx([0.0125, 0.025, 0.05, 0.1])
    assert [len(g["params"]) for g in groups] == [1, 4, 4, 2]
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}


def test_without_lr_decay_the_optimizer_keeps_one_group() -> None:
    _, _, trainer = _fit_tiny(1)
    assert len(trainer.optimizers[0].param_groups) == 1


def _changed(model: torch.nn.Module, initial: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(model.parameters(), initial.parameters()))


def test_gradual_unfreezing_trains_one_more_layer_group_each_epoch() -> None:
    after_one, initial, _ = _fit_tiny(1, "model.gradual_unfreezing=true")
    assert _changed(after_one.head, initial.head)
    assert not _changed(after_one.encoder, initial.encoder)
    assert not _changed(after_one.embedding, initial.embedding)
    after_two, initial, _ = _fit_tiny(2, "model.gradual_unfreezing=true")
    assert _changed(after_two.encoder, initial.encoder)
    assert not _changed(after_two.embedding, initial.embedding)
    after_three, initial, _ = _fit_tiny(3, "model.gradual_unfreezing=true")
    assert _changed(after_three.embedding, initial.embedding)


def test_gradual_unfreezing_without_a_pretrained_model_warns_that_frozen_layers_are_random(
    hub_dir, cache_dir, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_cfg(
        "train", [*TINY_RUN, "model.gradual_unfreezing=true"], tmp_path, cache_dir, hub_dir
    )
    with caplog.at_level(logging.WARNING):
        _, model = build_data_and_model(cfg)
    assert model.gradual_unfreezing
    assert "the frozen layers are random" in caplog.text
