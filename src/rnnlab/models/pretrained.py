"""Start a classifier from a language model: its embedding and recurrent layers, same tokenizer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import torch

from rnnlab.models.common import is_language_model
from rnnlab.utils.checkpoint import read_checkpoint
from rnnlab.utils.errors import ConfigError

if TYPE_CHECKING:
    from rnnlab.models.classifier import RNNClassifier

# must agree for the LM's weights to mean the same thing in the classifier
SHAPE_KEYS = ("cell", "embedding_dim", "hidden_size", "num_layers")
COPIED = ("embedding.", "encoder.")


def read_language_model(path: str, key: str = "model.pretrained") -> dict[str, Any]:
    """The checkpoint of a run of `train.py experiment=imdb_lm`, or a one-line error about `key`."""
    checkpoint = read_checkpoint(path)
    if not is_language_model(checkpoint.get("hyper_parameters", {})) or not checkpoint.get(
        "tokenizer_json"
    ):
        raise ConfigError(
            f"{key}={path!r}: not a language-model checkpoint "
            "(write one with train.py experiment=imdb_lm)"
        )
    return checkpoint


def load_language_model(model: RNNClassifier, path: str) -> None:
    """Copy the LM's embedding and recurrent weights into `model`; the head stays as it was.

    Refuses (ConfigError) a tokenizer other than the LM's, or layers of other shapes.
    """
    checkpoint = read_language_model(path)
    saved, wanted = checkpoint["hyper_parameters"], model.hparams
    if wanted.bidirectional:
        raise ConfigError(
            f"model.pretrained={path!r}: the LM reads left to right; use model.bidirectional=false"
        )
    keys = [*SHAPE_KEYS, "nonlinearity"] if wanted.cell == "rnn" else SHAPE_KEYS
    differ = [k for k in keys if saved.get(k) != wanted.get(k)]
    if differ:
        was = ", ".join(f"model.{k}={saved.get(k)}" for k in differ)
        now = ", ".join(f"model.{k}={wanted.get(k)}" for k in differ)
        raise ConfigError(f"model.pretrained={path!r}: the LM has {was}; the config asks for {now}")
    if model.tokenizer_json is None or json.loads(model.tokenizer_json) != json.loads(
        checkpoint["tokenizer_json"]
    ):
        raise ConfigError(
            f"model.pretrained={path!r}: the data's tokenizer is not the LM's "
            f"(vocab {wanted.vocab_size} vs {saved['vocab_size']}); encode the reviews with the "
            "LM's tokenizer (train.py does when model.pretrained is set)"
        )
    own = model.state_dict()
    copied = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(COPIED)}
    wrong = [k for k, v in copied.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ConfigError(f"model.pretrained={path!r}: {wrong[0]} does not fit the classifier")
    with torch.no_grad():
        for key, value in copied.items():
            own[key].copy_(value)
        model.embedding.weight[wanted.pad_id] = 0  # a tied LM moves it; the classifier keeps it 0
