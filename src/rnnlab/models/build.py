"""Build a model from its config and the data's facts, and rebuild one from a checkpoint."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from rnnlab.meta import DataMeta
from rnnlab.models.base import RecurrentModule
from rnnlab.utils.errors import ConfigError


def build_model(config: DictConfig | dict[str, Any], meta: DataMeta) -> RecurrentModule:
    """`config` is `cfg.model`: a `_target_` with its components as partials (conf/model/)."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    # built as a partial, then called: Hydra would turn a dataclass argument into a config
    model = hydra.utils.instantiate(config, _partial_=True, _convert_="all")(meta=meta)
    model.config = config
    return model


def model_settings(config: DictConfig) -> tuple[dict[str, Any], str | None]:
    """`cfg.model` as a plain dict for `build_model`, and `model.pretrained` apart: an LM
    checkpoint the train task copies weights from, not a constructor argument."""
    settings = OmegaConf.to_container(config, resolve=True)
    return settings, settings.pop("pretrained", None)


def model_objective(config: DictConfig | dict[str, Any]) -> tuple[str, str]:
    """The (metric, mode) a model built from `cfg.model` monitors, read from its classes without
    building it: its task's when it has one (`model.task`), else the model class's own."""
    task = config.get("task")
    return hydra.utils.get_class((task or config)["_target_"]).objective


def model_class(checkpoint: dict[str, Any]) -> type:
    return hydra.utils.get_class(checkpoint["model_config"]["_target_"])


def model_from_checkpoint(
    checkpoint: dict[str, Any], path: str, kind: type = RecurrentModule
) -> RecurrentModule:
    """Rebuild the model a checkpoint (read with `weights_only=True`) was trained as; refuse
    one that is not a `kind` (e.g. a language model where a classifier is needed)."""
    if not checkpoint.get("model_config") or "meta" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={path!r}: holds no model config and data facts; was it written by "
            "this version of train.py?"
        )
    if not issubclass(model_class(checkpoint), kind):
        raise ConfigError(
            f"ckpt_path={path!r}: a {model_class(checkpoint).__name__} checkpoint; this needs a "
            f"{kind.__name__} (a classifier starts from a language model with model.pretrained=<it>)"
        )
    model = build_model(checkpoint["model_config"], DataMeta.from_dict(checkpoint["meta"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
