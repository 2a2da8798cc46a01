"""A checkpoint holds the data facts and the model config, so model_from_checkpoint rebuilds the
model from it alone, and refuses a checkpoint of another kind of model in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rnnlab.meta import DataMeta
from rnnlab.models import (
    RecurrentModule,
    RNNClassifier,
    RNNLanguageModel,
    model_from_checkpoint,
)
from rnnlab.utils import ConfigError
from tests.conftest import item_loader, quiet_trainer
from tests.models.conftest import (
    FOUR_CLASSES,
    classifier,
    keyword_items,
    language_model,
    padded_batch,
    stream_loader,
)


def _trained(kind: str) -> RecurrentModule:
    if kind == "lm":
        model = language_model("gru", "model.num_layers=2")
        loader = stream_loader()
    else:
        model = classifier(
            "lstm", "attention", "model.bidirectional=true", "model.num_layers=2", meta=FOUR_CLASSES
        )
        loader = item_loader(keyword_items(num_classes=4), 8)
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(model, loader)
    return model


def _outputs(model: RecurrentModule) -> torch.Tensor:
    batch = padded_batch([7, 3], vocab_size=50)
    if isinstance(model, RNNLanguageModel):
        return model.log_probs(model(batch["input_ids"])[0])
    return model(batch["input_ids"], batch["lengths"])


@pytest.mark.parametrize("kind", ["classifier", "lm"])
def test_a_trainer_checkpoint_rebuilds_a_model_with_equal_outputs(
    kind: str, tmp_path: Path
) -> None:
    model = _trained(kind)
    path = tmp_path / "model.ckpt"
    model.trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)  # plain data only
    assert DataMeta.from_dict(checkpoint["meta"]) == model.meta
    assert checkpoint["model_config"] == model.config
    rebuilt = model_from_checkpoint(checkpoint, str(path))
    assert type(rebuilt) is type(model) and not rebuilt.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(_outputs(rebuilt), _outputs(model))


def test_on_save_checkpoint_writes_the_meta_and_the_config() -> None:
    model = classifier("elman", "mean", meta=FOUR_CLASSES)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["meta"]["label_names"] == ["a", "b", "c", "d"]
    rebuilt = model_from_checkpoint(checkpoint, "in-memory", kind=RNNClassifier)
    assert rebuilt.meta == FOUR_CLASSES and rebuilt.head.out_features == 4
    for key, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[key])


@pytest.mark.parametrize(
    ("make", "kind", "message"),
    [
        (
            lambda: classifier("gru"),
            RNNLanguageModel,
            "a RNNClassifier checkpoint; this needs a RNNLanguageModel",
        ),
        (
            lambda: language_model("gru"),
            RNNClassifier,
            "a RNNLanguageModel checkpoint; this needs a RNNClassifier",
        ),
    ],
    ids=["classifier-as-lm", "lm-as-classifier"],
)
def test_a_checkpoint_of_the_wrong_kind_is_refused_in_one_line(
    make: Callable[[], RecurrentModule], kind: type, message: str
) -> None:
    model = make()
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    with pytest.raises(ConfigError, match=rf"^ckpt_path='x\.ckpt': {message}") as err:
        model_from_checkpoint(checkpoint, "x.ckpt", kind=kind)
    assert "\n" not in str(err.value)


def test_a_checkpoint_without_model_config_or_meta_is_refused_in_one_line() -> None:
    model = classifier("gru")
    with pytest.raises(ConfigError, match=r"^ckpt_path='old\.ckpt': holds no model config") as err:
        model_from_checkpoint({"state_dict": model.state_dict()}, "old.ckpt")
    assert "\n" not in str(err.value)
