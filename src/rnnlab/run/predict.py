"""Labels for raw texts from a checkpoint alone; one JSON object per text on stdout."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from omegaconf import DictConfig

from rnnlab.data.dataset import pad_collate, truncate
from rnnlab.data.tokenizer import PAD, load_tokenizer
from rnnlab.models import RNNClassifier, RNNLanguageModel, model_from_checkpoint
from rnnlab.models.build import model_class
from rnnlab.utils import ConfigError, check, entry_point, read_checkpoint


class Predictor:
    """Tokenize + truncate exactly as training did, then score in batches; the model's task
    says what an answer holds (a label and probabilities, a value, a label per step)."""

    def __init__(self, model: RNNClassifier, max_len: int, truncation: str) -> None:
        self.model = model
        self.labels = model.meta.label_names
        self.tokenizer = load_tokenizer(model.meta.tokenizer_json)
        self.pad_id = self.tokenizer.token_to_id(PAD)
        self.max_len, self.truncation = max_len, truncation

    @classmethod
    def from_checkpoint(cls, path: str, device: str = "cpu") -> Predictor:
        """`device`: where the model runs (`auto`: the GPU when there is one)."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        checkpoint = read_checkpoint(path)
        if issubclass(model_class(checkpoint), RNNLanguageModel):
            raise ConfigError(
                f"ckpt_path={path!r}: a language model; it continues texts with generate.py"
            )
        model = model_from_checkpoint(checkpoint, path, kind=RNNClassifier)
        if model.meta.tokenizer_json is None:
            raise ConfigError(
                f"ckpt_path={path!r}: trained on {model.meta.data_config['_target_']}, which "
                "reads no texts; predict.py labels texts (eval.py scores this checkpoint)"
            )
        data = model.meta.data_config
        return cls(model.to(device), data["max_len"], data["truncation"])

    @torch.inference_mode()
    def outputs(self, texts: list[str]) -> torch.Tensor:
        """The task's outputs for a batch of texts (e.g. logits), on the CPU."""
        encodings = self.tokenizer.encode_batch(texts)
        items = [
            (truncate(np.asarray(e.ids, dtype=np.int64), self.max_len, self.truncation), 0)
            for e in encodings
        ]
        batch = pad_collate(items, self.pad_id)
        device = self.model.device
        return self.model(batch["input_ids"].to(device), batch["lengths"].to(device)).cpu()

    def predict_lines(self, texts: Iterable[str], batch_size: int = 256) -> Iterator[dict]:
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, batch_size)):
            yield from self.model.task.describe(self.outputs(chunk), self.labels)


def _decoded_lines(lines: Iterable[bytes], source: str) -> Iterator[str]:
    """Invalid UTF-8 is replaced (U+FFFD), with one notice per source, never a crash."""
    warned = False
    for raw in lines:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            if not warned:
                print(f"notice: {source}: invalid UTF-8 replaced by U+FFFD", file=sys.stderr)
                warned = True
        yield line.rstrip("\r\n")


def _texts(cfg: DictConfig, stdin: BinaryIO) -> Iterator[str]:
    if cfg.get("text") is not None:
        yield str(cfg.text)
        return
    if cfg.get("input_file"):
        path = Path(cfg.input_file)
        if not path.is_file():
            raise ConfigError(f"input_file={str(path)!r}: no such file")
        with path.open("rb") as f:
            yield from _decoded_lines(f, str(path))
        return
    yield from _decoded_lines(stdin, "stdin")


@entry_point
def predict(cfg: DictConfig) -> None:
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path=None: required; pass ckpt_path=<run>/checkpoints/best.ckpt")
    device = str(cfg.get("device") or "auto")
    check(
        device == "auto" or device == "cpu" or device.startswith("cuda"),
        "device",
        device,
        "auto, cpu, cuda or cuda:<index>",
    )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: no CUDA GPU here; use device=cpu or device=auto")
    predictor = Predictor.from_checkpoint(str(cfg.ckpt_path), device)
    for result in predictor.predict_lines(_texts(cfg, sys.stdin.buffer), cfg.batch_size):
        sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
