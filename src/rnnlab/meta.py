"""Facts about the data that the model is built from, carried in one object and stored in every
checkpoint, so that eval and predict need the checkpoint alone (nn-template's MetaData)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataMeta:
    """`data_config` is the data module's own config (with `_target_`), so `eval.py` can rebuild
    the very data module a checkpoint was trained on. `label_names` names the classes a model
    predicts (a copy task's symbols); it is empty for a language model and a regression.
    `input_size`: features per step of vector inputs (the adding task); 0 for token ids.
    A memory task also states `span`, the steps its answers must reach back over, and `chance`,
    the test objective of an answer blind to the input (the floor a lab report draws); text
    data leaves them unset."""

    vocab_size: int
    pad_id: int
    tokenizer_json: str
    label_names: tuple[str, ...] = ()
    data_config: dict[str, Any] = field(default_factory=dict)
    input_size: int = 0
    span: int | None = None
    chance: float | None = None

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so `torch.load(weights_only=True)` reads it back."""
        return {**asdict(self), "label_names": list(self.label_names)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataMeta:
        return cls(**{**values, "label_names": tuple(values.get("label_names", ()))})
