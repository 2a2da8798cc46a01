"""Sample text from a language-model checkpoint: a quick look at what it has learnt."""

from __future__ import annotations

import sys

import torch
from omegaconf import DictConfig

from rnnlab.data.tokenizer import EOS, load_tokenizer
from rnnlab.models import RNNLanguageModel, model_from_checkpoint
from rnnlab.models.pretrained import read_language_model
from rnnlab.utils import ConfigError, check, entry_point


def continuations(
    ckpt_path: str,
    prompt: str,
    max_tokens: int = 50,
    temperature: float = 1.0,
    num_samples: int = 1,
    seed: int = 0,
) -> list[str]:
    """`prompt` + a sampled continuation, each read as if a new review began with the prompt."""
    checkpoint = read_language_model(ckpt_path, key="ckpt_path")
    model = model_from_checkpoint(checkpoint, ckpt_path, kind=RNNLanguageModel)
    tokenizer = load_tokenizer(model.meta.tokenizer_json)
    eos = tokenizer.token_to_id(EOS)
    prompt_ids = [eos, *tokenizer.encode(prompt).ids]  # training saw every review after an <eos>
    generator = torch.Generator().manual_seed(seed)
    texts = []
    for _ in range(num_samples):
        new = model.sample(prompt_ids, max_tokens, temperature, stop_id=eos, generator=generator)
        ids = prompt_ids[1:] + [i for i in new if i != eos]
        texts.append(tokenizer.decode(ids, skip_special_tokens=False))  # show <unk>
    return texts


@entry_point
def generate(cfg: DictConfig) -> None:
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path=None: required; pass ckpt_path=<lm run>/checkpoints/best.ckpt")
    check(
        isinstance(cfg.max_tokens, int) and cfg.max_tokens >= 1,
        "max_tokens",
        cfg.max_tokens,
        "an integer >= 1",
    )
    check(cfg.temperature > 0, "temperature", cfg.temperature, "a number > 0")
    check(
        isinstance(cfg.num_samples, int) and cfg.num_samples >= 1,
        "num_samples",
        cfg.num_samples,
        "an integer >= 1",
    )
    texts = continuations(
        str(cfg.ckpt_path),
        str(cfg.prompt or ""),
        cfg.max_tokens,
        float(cfg.temperature),
        cfg.num_samples,
        cfg.seed,
    )
    for text in texts:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
