"""What the benchmark times in a fresh interpreter, so that imports and caches start cold:
`python -m rnnlab.tools.benchmark_child <measure> '<json keyword arguments>'` prints one JSON line."""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning import Callback

from rnnlab.data import TextClassificationDataModule
from rnnlab.run.train import route_clipping
from rnnlab.tools.benchmark import build_model, project_config


def cold_preprocessing(path: str, cache_dir: str, data_kwargs: dict[str, Any]) -> dict[str, float]:
    """prepare_data() with an empty project cache (the caller empties `datasets`' own)."""
    datamodule = TextClassificationDataModule(path, cache_dir=cache_dir, **data_kwargs)
    start = time.perf_counter()
    datamodule.prepare_data()
    return {"seconds": time.perf_counter() - start}


def first_step(data_kwargs: dict[str, Any], overrides: list[str]) -> dict[str, float]:
    """What `train.py` does up to its first training step, stamped at each stage."""
    stamps = {"imported": time.time()}
    datamodule = TextClassificationDataModule(**data_kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    stamps["data"] = time.time()
    cfg = project_config(overrides)
    model = build_model(cfg, datamodule.vocab_size, datamodule.pad_id)

    class Stamp(Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            stamps["first_step"] = time.time()

    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        max_steps=1,
        **route_clipping(cfg.trainer, model),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Stamp()],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=datamodule)
    return stamps


MEASURES = {"cold_preprocessing": cold_preprocessing, "first_step": first_step}


def main(argv: Sequence[str]) -> None:
    measure, kwargs = argv
    print(json.dumps(MEASURES[measure](**json.loads(kwargs))))


if __name__ == "__main__":
    main(sys.argv[1:])
