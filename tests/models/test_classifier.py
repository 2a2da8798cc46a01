import functools

import pytest
import torch

from rnnlab.models import RNNClassifier
from rnnlab.utils import ConfigError
from tests.conftest import item_loader, quiet_trainer


def _tiny_batches(n: int = 32) -> list:
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        length = int(torch.randint(3, 15, (1,), generator=gen))
        ids = torch.randint(3, 40, (length,), generator=gen)
        ids[int(torch.randint(0, length, (1,), generator=gen))] = 1 + i % 2  # the sentiment token
        items.append((ids.numpy(), i % 2))
    return items


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_model_overfits_a_tiny_batch(cell) -> None:
    torch.manual_seed(0)
    model = RNNClassifier(
        vocab_size=40,
        pad_id=0,
        cell=cell,
        embedding_dim=16,
        hidden_size=32,
        pooling="max",
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
    )
    loader = item_loader(_tiny_batches(), 32)
    trainer = quiet_trainer(
        max_epochs=60,
    )
    trainer.fit(model, loader)
    batch = next(iter(loader))
    with torch.no_grad():
        predicted = model(batch["input_ids"], batch["lengths"]) > 0
    assert (predicted.float() == batch["labels"]).float().mean() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, "model.cell='transformer'"),
        ({"hidden_size": 0}, "model.hidden_size=0"),
        ({"embedding_dim": -1}, "model.embedding_dim=-1"),
        ({"dropout": 1.0}, "model.dropout=1.0"),
        ({"pooling": "sum"}, "model.pooling='sum'"),
        ({"nonlinearity": "sigmoid"}, "model.nonlinearity='sigmoid'"),
        ({"lr_decay": 0.5}, "model.lr_decay=0.5"),
    ],
)
def test_bad_model_settings_name_the_key_and_value(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        RNNClassifier(vocab_size=10, pad_id=0, **kwargs)


def test_one_cycle_schedule_gets_the_run_length_from_the_trainer() -> None:
    model = RNNClassifier(
        vocab_size=40,
        pad_id=0,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        scheduler=lambda optimizer, total_steps: torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=0.1, total_steps=total_steps
        ),
    )
    loader = item_loader(_tiny_batches(), 8)
    trainer = quiet_trainer(
        max_epochs=2,
    )
    trainer.fit(model, loader)
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 8


def test_uniform_embedding_init_is_small_and_keeps_the_pad_row_zero() -> None:
    model = RNNClassifier(vocab_size=50, pad_id=0, embedding_init="uniform")
    weight = model.embedding.weight
    assert weight.abs().max() <= 0.05 and (weight[0] == 0).all() and weight[1:].abs().sum() > 0


def _fit_tiny(max_epochs: int, **kwargs) -> tuple[RNNClassifier, RNNClassifier, object]:
    """A model fitted on the tiny data, an untouched copy of its initial weights, the trainer."""
    torch.manual_seed(0)
    settings = {"vocab_size": 40, "pad_id": 0, "embedding_dim": 8, "hidden_size": 8, **kwargs}
    model = RNNClassifier(**settings)
    initial = RNNClassifier(**settings)
    initial.load_state_dict(model.state_dict())
    trainer = quiet_trainer(max_epochs=max_epochs)
    trainer.fit(model, item_loader(_tiny_batches(), 8))
    return model, initial, trainer


def test_discriminative_lr_gives_each_layer_group_below_the_head_a_decayed_one_cycle_peak() -> None:
    model, _, trainer = _fit_tiny(
        1,
        num_layers=2,
        lr_decay=2.0,
        optimizer=functools.partial(torch.optim.AdamW, lr=0.1),
        scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1),
    )
    groups = trainer.optimizers[0].param_groups
    # embedding, recurrent layer 0, recurrent layer 1, head
    assert [g["max_lr"] for g in groups] == pytest.approx([0.0125, 0.025, 0.05, 0.1])
    assert [len(g["params"]) for g in groups] == [1, 4, 4, 2]
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}


def test_without_lr_decay_the_optimizer_keeps_one_group_as_older_checkpoints_have() -> None:
    _, _, trainer = _fit_tiny(1)
    assert len(trainer.optimizers[0].param_groups) == 1


def _changed(model: torch.nn.Module, initial: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(model.parameters(), initial.parameters()))


def test_gradual_unfreezing_trains_one_more_layer_group_each_epoch() -> None:
    after_one, initial, _ = _fit_tiny(1, gradual_unfreezing=True)
    assert _changed(after_one.head, initial.head)
    assert not _changed(after_one.encoder, initial.encoder)
    assert not _changed(after_one.embedding, initial.embedding)
    after_two, initial, _ = _fit_tiny(2, gradual_unfreezing=True)
    assert _changed(after_two.encoder, initial.encoder)
    assert not _changed(after_two.embedding, initial.embedding)
    after_three, initial, _ = _fit_tiny(3, gradual_unfreezing=True)
    assert _changed(after_three.embedding, initial.embedding)


def test_concat_pooling_is_last_max_and_mean_side_by_side() -> None:
    from rnnlab.models.encoder import pool

    outputs = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 2])
    parts = [pool(outputs, lengths, how, bidirectional=False) for how in ("last", "max", "mean")]
    torch.testing.assert_close(pool(outputs, lengths, "concat", False), torch.cat(parts, -1))
    model = RNNClassifier(vocab_size=40, pad_id=0, hidden_size=8, pooling="concat")
    assert model.head.in_features == 24


def test_gradual_unfreezing_without_a_pretrained_model_warns_that_frozen_layers_are_random(
    caplog,
) -> None:
    RNNClassifier(vocab_size=40, pad_id=0, gradual_unfreezing=True)
    assert "the frozen layers are random" in caplog.text
