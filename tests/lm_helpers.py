"""Synthetic IMDB with an unsupervised split (what the language model reads), and tiny LM runs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import make_reviews, write_hub_layout

# declares the unsupervised split, as the real copy's README does (the file name alone does not)
README = """---
configs:
- config_name: plain_text
  default: true
  data_files:
  - split: train
    path: plain_text/train-*
  - split: test
    path: plain_text/test-*
  - split: unsupervised
    path: plain_text/unsupervised-*
---
"""
TEST_ONLY_WORD = "zyzzyva"  # appears in the test split only: the LM must never learn it

LM_TINY = [
    "experiment=imdb_lm",
    "model.embedding_dim=16",
    "model.hidden_size=16",
    "model.tbptt_steps=10",
    "model.decoder.cutoffs=[8,16]",  # the synthetic reviews have ~27 words
    "data.batch_size=4",
    "data.eval_batch_size=4",
    "data.vocab_size=100",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "callbacks.progress_bar=null",
]


def write_lm_layout(root: Path, n_unsup: int = 120) -> Path:
    write_hub_layout(root)
    texts, _ = make_reviews(n_unsup, seed=7)
    table = pa.table({"text": texts, "label": [-1] * n_unsup})
    pq.write_table(table, root / "plain_text" / "unsupervised-00000-of-00001.parquet")
    test = pq.read_table(root / "plain_text" / "test-00000-of-00001.parquet").to_pydict()
    test["text"] = [f"{text} {TEST_ONLY_WORD}" for text in test["text"]]
    pq.write_table(pa.table(test), root / "plain_text" / "test-00000-of-00001.parquet")
    (root / "README.md").write_text(README, encoding="utf-8")
    return root
