"""Start a classifier from a language model: its embedding and recurrent layers, same tokenizer."""

from __future__ import annotations

import json
from typing import Any

import torch

from rnnlab.models.base import RecurrentModule
from rnnlab.models.build import model_class
from rnnlab.models.lm import RNNLanguageModel
from rnnlab.utils.checkpoint import read_checkpoint
from rnnlab.utils.errors import ConfigError

# the settings that must agree for the LM's weights to mean the same thing in the classifier
SHAPE_KEYS = ("embedding_dim", "hidden_size", "num_layers")
COPIED = ("embedding", "encoder")


def read_language_model(path: str, key: str = "model.pretrained") -> dict[str, Any]:
    """The checkpoint of a run of `train.py experiment=imdb_lm`, or a one-line error about `key`."""
    checkpoint = read_checkpoint(path)
    config = checkpoint.get("model_config") or {}
    if "_target_" not in config or not issubclass(model_class(checkpoint), RNNLanguageModel):
        raise ConfigError(
            f"{key}={path!r}: not a language-model checkpoint "
            "(write one with train.py experiment=imdb_lm)"
        )
    return checkpoint


def _encoder_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The encoder's own settings but dropout (training only)."""
    return {k: v for k, v in config["encoder"].items() if k != "dropout"}


def start_from_language_model(
    model: RecurrentModule, path: str, checkpoint: dict[str, Any] | None = None
) -> None:
    """Copy the LM's embedding and encoder weights into `model`; everything above stays.
    `checkpoint`: the one at `path`, when the caller has read it already.

    Refuses (ConfigError) a tokenizer other than the LM's, or another encoder or sizes.
    """
    checkpoint = checkpoint or read_language_model(path)
    saved, wanted = checkpoint["model_config"], model.config
    if model.encoder.bidirectional:
        raise ConfigError(
            f"model.pretrained={path!r}: the LM reads left to right; use model.bidirectional=false"
        )
    differ = [k for k in SHAPE_KEYS if saved.get(k) != wanted.get(k)]
    if _encoder_settings(saved) != _encoder_settings(wanted):
        differ.append("encoder")
    if differ:
        was = ", ".join(f"model.{k}={saved.get(k)}" for k in differ)
        now = ", ".join(f"model.{k}={wanted.get(k)}" for k in differ)
        raise ConfigError(f"model.pretrained={path!r}: the LM has {was}; the config asks for {now}")
    lm_tokenizer = checkpoint["meta"]["tokenizer_json"]
    if json.loads(model.meta.tokenizer_json) != json.loads(lm_tokenizer):
        raise ConfigError(
            f"model.pretrained={path!r}: the data's tokenizer is not the LM's (vocab "
            f"{model.meta.vocab_size} vs {checkpoint['meta']['vocab_size']}); encode the texts "
            "with the LM's tokenizer (train.py does when model.pretrained is set)"
        )
    with torch.no_grad():
        for name in COPIED:
            prefix = f"{name}."
            state = {
                k.removeprefix(prefix): v
                for k, v in checkpoint["state_dict"].items()
                if k.startswith(prefix)
            }
            getattr(model, name).load_state_dict(state)
        model.embedding.weight[model.meta.pad_id] = 0  # a tied LM moves it; keep padding at 0
