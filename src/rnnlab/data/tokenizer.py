"""Word-level tokenizer trained with Hugging Face `tokenizers`; travels as JSON text."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "<pad>", "<unk>"
EOS = "<eos>"  # the language model's end-of-review separator
KINDS = ("wordlevel", "bpe")
PUNCTUATION = ("keep", "drop")  # drop: as Keras' IMDB copy, words only
EVERY_WORD = 2**31 - 1  # a vocabulary cap no corpus reaches (the trainers' own default is 30,000)


def build_tokenizer(
    texts: Iterable[str],
    vocab_size: int | None,
    kind: str = "wordlevel",
    extra: Sequence[str] = (),
    punctuation: str = "keep",
    min_frequency: int = 1,
) -> Tokenizer:
    """Lowercase, drop `<br />` tags, split words and punctuation, keep the `vocab_size` commonest
    of the words seen at least `min_frequency` times (`vocab_size` None: all of those; word level).

    `<pad>`=0, `<unk>`=1, then the `extra` special tokens, then words by falling frequency.
    `punctuation="drop"` keeps words only, so `max_len` tokens cover more of a review.
    """
    special = [PAD, UNK, *extra]
    sizes = {
        "vocab_size": EVERY_WORD if vocab_size is None else vocab_size,
        "min_frequency": min_frequency,
        "special_tokens": special,
    }
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(**sizes)
    else:
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(**sizes)
    steps = [
        normalizers.Replace(Regex(r"<br\s*/?>"), " "),
        normalizers.NFKC(),
        normalizers.Lowercase(),
    ]
    if punctuation == "drop":
        steps.append(normalizers.Replace(Regex(r"[^\w\s]"), " "))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def load_tokenizer(json_text: str) -> Tokenizer:
    return Tokenizer.from_str(json_text)


class TokenizerSizes:
    """A data-module mixin: `vocab_size` and `pad_id` reach the model from the tokenizer itself,
    so nobody types them into a config."""

    tokenizer_json: str | None

    @functools.cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.tokenizer_json)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int:
        return self.tokenizer.token_to_id(PAD)
