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
from rnnlab.models import RNNClassifier, model_from_checkpoint
from rnnlab.utils import ConfigError, check, read_checkpoint, task_wrapper


class Predictor:
    """Tokenize + truncate exactly as training did, then score in batches."""

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
        model = model_from_checkpoint(read_checkpoint(path), path, kind=RNNClassifier)
        data = model.meta.data_config
        return cls(model.to(device), data["max_len"], data["truncation"])

    @torch.inference_mode()
    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """(N,) of the positive class for two classes, else (N, C)."""
        encodings = self.tokenizer.encode_batch(texts)
        items = [
            (truncate(np.asarray(e.ids, dtype=np.int64), self.max_len, self.truncation), 0)
            for e in encodings
        ]
        batch = pad_collate(items, self.pad_id)
        device = self.model.device
        logits = self.model(batch["input_ids"].to(device), batch["lengths"].to(device))
        return self.model.probabilities(logits).cpu()

    def result(self, probs: torch.Tensor) -> dict:
        """Two classes: {"label": "pos", "prob_pos": 0.97}; more: every class's probability."""
        if probs.dim() == 0:
            p = float(probs)
            return {"label": self.labels[p >= 0.5], f"prob_{self.labels[1]}": round(p, 6)}
        return {
            "label": self.labels[int(probs.argmax())],
            "probs": {name: round(float(p), 6) for name, p in zip(self.labels, probs)},
        }

    def predict_lines(self, texts: Iterable[str], batch_size: int = 256) -> Iterator[dict]:
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, batch_size)):
            for probs in self.probabilities(chunk):
                yield self.result(probs)


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


@task_wrapper
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
