"""On the real IMDB copy ($IMDB_DIR, default ../shared/data/imdb)."""

import pytest

from rnnlab.data import TextClassificationDataModule
from rnnlab.data.loading import load_source
from rnnlab.run.train import train
from tests.conftest import REAL_IMDB, TINY, compose_cfg

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("real_cache")


def test_real_imdb_has_the_published_splits_and_balanced_labels() -> None:
    ds = load_source(REAL_IMDB)
    assert {k: len(v) for k, v in ds.items()} == {
        "train": 25000,
        "test": 25000,
        "unsupervised": 50000,
    }
    for split in ("train", "test"):
        assert sum(ds[split]["label"]) == 12500


def test_real_data_module_tests_on_all_25000_reviews_and_carves_val_from_train(real_cache) -> None:
    dm = TextClassificationDataModule(REAL_IMDB, cache_dir=str(real_cache))
    dm.prepare_data()
    dm.setup("fit")
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.splits["test"])) == (
        22500,
        2500,
        25000,
    )
    assert dm.vocab_size == 20000
    assert dm.meta.label_names == ("neg", "pos")
    lengths = dm.splits["train"].lengths
    batches = list(dm.train_dataloader())
    padded = sum(int(b["input_ids"].numel()) for b in batches)
    assert 1 - lengths.sum() / padded < 0.05


def test_short_real_training_learns_something(real_cache, tmp_path) -> None:
    overrides = [
        *TINY,
        "data.vocab_size=20000",
        "data.batch_size=64",
        "data.max_len=128",
        "model=gru",
        "model.hidden_size=64",
        "model.embedding_dim=64",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=250",
        "trainer.limit_val_batches=10",
        "trainer.limit_test_batches=20",
    ]
    metrics = train(compose_cfg("train", overrides, tmp_path, real_cache, REAL_IMDB))
    assert (
        metrics["val/acc_best"] > 0.65
    )  # val is a shuffled, stratified slice; test is sorted by label
