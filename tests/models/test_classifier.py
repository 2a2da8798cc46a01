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
