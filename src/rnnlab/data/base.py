"""What the classifier's and the language model's data modules share: the encoded-data cache's
folder, the tokenizer (trained here or given by a checkpoint), and the `meta` a model is built from."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lightning import LightningDataModule
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, Dataset

from rnnlab.data.cache import keyed_folder
from rnnlab.data.sampler import ResumableDataLoader
from rnnlab.data.tokenizer import TokenizerSizes, build_tokenizer, load_tokenizer
from rnnlab.meta import DataMeta
from rnnlab.utils.errors import ConfigError, check
from rnnlab.utils.io import atomic_dir

log = logging.getLogger(__name__)


def check_counts(**values: Any) -> None:
    """Batch sizes and the like: integers >= 1, each named by its `data.` key when not."""
    for key, value in values.items():
        check(isinstance(value, int) and value >= 1, f"data.{key}", value, "an integer >= 1")


class SplitLoaders(LightningDataModule):
    """The loaders of a data module whose `_loader(split, batch_size, train)` builds one: the
    training loader resumes mid-epoch, each is shared out over the trainer's ranks."""

    def _loader(self, split: str, batch_size: int, train: bool) -> DataLoader:
        raise NotImplementedError

    def _replicas(self) -> tuple[int | None, int | None]:
        """(world size, rank) from the trainer; (None, None) outside one."""
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer else (None, None)

    def _resumable(self, dataset: Dataset, **kwargs: Any) -> ResumableDataLoader:
        """The training loader (`limit_train_batches` may cut its epochs short)."""
        return ResumableDataLoader.for_trainer(self.trainer, dataset, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.eval_batch_size, train=False)


class TextDataModule(TokenizerSizes, SplitLoaders):
    """Subclasses save their hyperparameters (not `tokenizer_json`), key their cache with
    `_cache_key()` and set `label_names` when they load it."""

    tokenizer_json: str | None
    label_names: tuple[str, ...] | None = None  # known once the cache is loaded

    def _cache_key(self) -> dict[str, Any]:
        raise NotImplementedError

    def _cache_prefix(self) -> str:
        raise NotImplementedError

    @functools.cached_property
    def cache_path(self) -> Path:
        """A given tokenizer (eval from a checkpoint) reuses the training run's cache when that
        cache holds the very same tokenizer, instead of encoding everything again."""
        trained_here = self._cache_path_for(None)
        if self.tokenizer_json is None:
            return trained_here
        saved = trained_here / "tokenizer.json"
        if (trained_here / "meta.json").is_file() and saved.read_text(
            encoding="utf-8"
        ) == self.tokenizer_json:
            return trained_here
        return self._cache_path_for(self.tokenizer_json)

    def _cache_path_for(self, tokenizer_json: str | None) -> Path:
        given = hashlib.sha256(tokenizer_json.encode()).hexdigest() if tokenizer_json else None
        key = {**self._cache_key(), "given_tokenizer": given}
        return keyed_folder(self.hparams.cache_dir, self._cache_prefix(), key)

    def _tokenizer(
        self,
        texts: Iterable[str],
        what: str,
        extra: Sequence[str] = (),
        punctuation: str = "keep",
        min_frequency: int = 1,
    ) -> Tokenizer:
        """The given tokenizer, else one trained on `texts` (the training split only)."""
        if self.tokenizer_json:
            return load_tokenizer(self.tokenizer_json)
        hp = self.hparams
        tokenizer = build_tokenizer(
            texts, hp.vocab_size, hp.tokenizer, extra, punctuation, min_frequency
        )
        log.info(
            "Trained a %s tokenizer on %s: %d tokens (vocab_size %s, min_frequency %d)",
            hp.tokenizer,
            what,
            tokenizer.get_vocab_size(),
            hp.vocab_size,
            min_frequency,
        )
        return tokenizer

    @contextlib.contextmanager
    def _building_cache(self, tokenizer: Tokenizer, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a scratch folder for the encoded splits; `meta` may still be filled in there.
        tokenizer.json and meta.json (last) follow, and only then does it become `cache_path`."""
        with atomic_dir(self.cache_path) as tmp:
            yield tmp
            (tmp / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def _read_cache_meta(self) -> dict[str, Any]:
        """meta.json, and the tokenizer the cache was encoded with (now this module's)."""
        meta = json.loads((self.cache_path / "meta.json").read_text(encoding="utf-8"))
        tokenizer_json = (self.cache_path / "tokenizer.json").read_text(encoding="utf-8")
        load_tokenizer(tokenizer_json)  # damaged: raises here, so the cache is rebuilt
        self.tokenizer_json = tokenizer_json
        return meta

    @property
    def meta(self) -> DataMeta:
        """What a model is built from and a checkpoint carries; `data_config` rebuilds this very
        module with `hydra.utils.instantiate(data_config, tokenizer_json=...)`."""
        if self.label_names is None or self.tokenizer_json is None:
            raise ConfigError(
                f"{type(self).__name__}.meta needs the data set up; call setup() first"
            )
        cls = type(self)
        return DataMeta(
            vocab_size=self.vocab_size,
            pad_id=self.pad_id,
            tokenizer_json=self.tokenizer_json,
            label_names=self.label_names,
            data_config={
                "_target_": f"{cls.__module__}.{cls.__qualname__}",
                **copy.deepcopy(dict(self.hparams)),
            },
        )
