import json
from pathlib import Path

import hydra
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import rnnlab.data.base as base_module
import rnnlab.data.datamodule as datamodule_module
from rnnlab.data import TextClassificationDataModule
from rnnlab.data.dataset import truncate
from rnnlab.utils import ConfigError
from tests.conftest import make_reviews

TOPICS = {"text_column": "sentence", "label_column": "topic", "num_classes": 4}


def _dm(data: Path, cache: Path, **kwargs) -> TextClassificationDataModule:
    dm = TextClassificationDataModule(str(data), cache_dir=str(cache), vocab_size=100, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _fail(*args, **kwargs):
    raise AssertionError("the cache should have been used")


def test_validation_is_carved_from_train_stratified_and_test_is_whole(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, val_fraction=0.25)
    assert len(dm.splits["train"]) == 180 and len(dm.splits["val"]) == 60
    assert len(dm.splits["test"]) == 120
    assert dm.splits["val"].labels.mean() == pytest.approx(0.5)


def test_aclimdb_folder_gives_imdb_label_names(acl_dir, tmp_path) -> None:
    dm = _dm(acl_dir, tmp_path)
    assert dm.meta.label_names == ("neg", "pos") and len(dm.splits["test"]) == 120
    assert dm.cache_path.name.startswith("aclimdb-")


def test_a_dataset_with_its_own_validation_split_and_four_classes(multiclass_dir, tmp_path) -> None:
    dm = _dm(multiclass_dir, tmp_path, val_split="validation", **TOPICS)
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [400, 80, 120]
    assert dm.meta.label_names == ("world", "sports", "business", "science")
    assert dm.meta.num_classes == 4
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].dtype == torch.int64 and batch["input_ids"].dtype == torch.int64
    assert set(np.unique(dm.splits["val"].labels)) == {0, 1, 2, 3}
    meta = json.loads((dm.cache_path / "meta.json").read_text())
    assert meta["label_names"] == ["world", "sports", "business", "science"]


def test_class_label_names_reach_the_meta(hub_dir, tmp_path) -> None:
    assert _dm(hub_dir, tmp_path).meta.label_names == ("neg", "pos")


def test_plain_integer_labels_are_named_by_their_ids(tmp_path) -> None:
    folder = tmp_path / "plain"
    (folder / "plain_text").mkdir(parents=True)
    texts, labels = make_reviews(40, 0)
    for split in ("train", "test"):
        table = pa.table({"text": texts, "label": labels})
        pq.write_table(table, folder / "plain_text" / f"{split}-00000-of-00001.parquet")
    assert _dm(folder, tmp_path / "cache").meta.label_names == ("0", "1")


def test_second_setup_reads_the_cache_without_loading_or_tokenizing(
    hub_dir, tmp_path, monkeypatch
) -> None:
    first = _dm(hub_dir, tmp_path)
    monkeypatch.setattr(datamodule_module, "load_source", _fail)
    monkeypatch.setattr(base_module, "build_tokenizer", _fail)
    second = _dm(hub_dir, tmp_path)
    assert second.tokenizer_json == first.tokenizer_json
    assert second.meta.label_names == first.meta.label_names
    np.testing.assert_array_equal(second.splits["train"].flat, first.splits["train"].flat)


@pytest.mark.parametrize(
    "change",
    [
        {"vocab_size": 101},
        {"text_column": "sentence"},
        {"label_column": "topic"},
        {"num_classes": 3},
        {"name": "other"},
        {"val_split": "validation"},
        {"test_split": "validation"},
    ],
)
def test_cache_key_changes_with_what_changes_the_encoding(hub_dir, tmp_path, change) -> None:
    def cache_path(**kwargs) -> Path:
        args = {"cache_dir": str(tmp_path), "vocab_size": 100, **kwargs}
        return TextClassificationDataModule(str(hub_dir), **args).cache_path

    assert cache_path(**change) != cache_path()
    assert cache_path(max_len=7, truncation="tail") == cache_path()


def test_the_cache_folder_is_named_after_the_source(tmp_path) -> None:
    (tmp_path / "My_Topics").mkdir()
    local = TextClassificationDataModule(str(tmp_path / "My_Topics"), name="sub", cache_dir=".")
    assert local.cache_path.name.startswith("my-topics-sub-")
    hub = TextClassificationDataModule("stanfordnlp/sst2", cache_dir=".")
    assert hub.cache_path.name.startswith("sst2-")


def test_the_training_runs_tokenizer_reuses_its_cache_and_another_tokenizer_does_not(
    hub_dir, tmp_path, monkeypatch
) -> None:
    trained = _dm(hub_dir, tmp_path)
    other = _dm(hub_dir, tmp_path / "other", tokenizer="bpe").tokenizer_json
    monkeypatch.setattr(datamodule_module, "load_source", _fail)
    again = _dm(hub_dir, tmp_path, tokenizer_json=trained.tokenizer_json)
    assert again.cache_path == trained.cache_path
    given = TextClassificationDataModule(
        str(hub_dir), cache_dir=str(tmp_path), vocab_size=100, tokenizer_json=other
    )
    assert given.cache_path != trained.cache_path


def test_vocab_size_and_pad_id_come_from_the_tokenizer(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path)
    assert dm.vocab_size <= 100 and dm.pad_id == 0
    assert (dm.meta.vocab_size, dm.meta.pad_id) == (dm.vocab_size, dm.pad_id)


def test_meta_rebuilds_the_same_data_module(multiclass_dir, tmp_path, monkeypatch) -> None:
    dm = _dm(multiclass_dir, tmp_path, val_split="validation", max_len=9, **TOPICS)
    meta = dm.meta
    json.dumps(meta.to_dict())  # plain types only: a checkpoint loads it with weights_only
    assert meta.data_config["_target_"] == "rnnlab.data.datamodule.TextClassificationDataModule"
    assert "tokenizer_json" not in meta.data_config
    monkeypatch.setattr(datamodule_module, "load_source", _fail)  # the training run's cache
    again = hydra.utils.instantiate(meta.data_config, tokenizer_json=meta.tokenizer_json)
    again.setup("test")
    assert type(again) is type(dm) and again.meta == meta
    for ours, theirs in zip(dm.test_dataloader(), again.test_dataloader()):
        for key in ("input_ids", "lengths", "labels"):
            torch.testing.assert_close(theirs[key], ours[key])


def test_no_max_len_derives_the_length_most_training_texts_fit_in_and_keeps_it(
    hub_dir, tmp_path, monkeypatch
) -> None:
    """Catches a length from the wrong split or share, and one the checkpoint's data config does
    not keep (eval and predict would then cut texts differently from training)."""
    dm = _dm(hub_dir, tmp_path, max_len=None)
    raw = np.diff(dm.splits["train"].offsets)
    assert dm.hparams.max_len == int(np.quantile(raw, 0.99, method="higher"))
    assert (raw <= dm.hparams.max_len).mean() >= 0.99 > (raw < dm.hparams.max_len).mean()
    assert dm.splits["test"].lengths.max() <= dm.hparams.max_len
    assert dm.meta.data_config["max_len"] == dm.hparams.max_len
    monkeypatch.setattr(datamodule_module, "load_source", _fail)
    again = hydra.utils.instantiate(dm.meta.data_config, tokenizer_json=dm.meta.tokenizer_json)
    again.setup("test")
    np.testing.assert_array_equal(again.splits["test"].lengths, dm.splits["test"].lengths)


def test_no_vocab_size_keeps_the_training_words_seen_min_frequency_times(tmp_path) -> None:
    """Counts come from the training split alone: a word only the test split has is <unk>."""
    texts = ["good good film", "bad film", "bad bad plot", "good plot"] * 5 + ["rare gem"] * 1
    labels = [0, 1] * 10 + [1]
    folder = tmp_path / "tiny"
    folder.mkdir()
    pq.write_table(pa.table({"text": texts, "label": labels}), folder / "train.parquet")
    test = pa.table({"text": ["unseen words", "good film"], "label": [0, 1]})
    pq.write_table(test, folder / "test.parquet")
    dm = TextClassificationDataModule(
        str(folder), cache_dir=str(tmp_path / "c"), vocab_size=None, min_frequency=2
    )
    dm.prepare_data()
    dm.setup("fit")
    words = set(dm.tokenizer.get_vocab()) - {"<pad>", "<unk>"}
    assert words == {"good", "bad", "film", "plot"}


def test_labels_of_one_class_are_refused_naming_the_column_and_the_count(tmp_path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    for split in ("train", "test"):
        table = pa.table({"text": ["a b", "c d"] * 10, "label": ["pos"] * 20})
        pq.write_table(table, folder / f"{split}.parquet")
    dm = TextClassificationDataModule(str(folder), cache_dir=str(tmp_path / "c"), num_classes=None)
    message = r"^data\.num_classes=None: data\.label_column='label' holds 1 class\(es\)"
    with pytest.raises(ConfigError, match=message):
        dm.prepare_data()


def test_meta_before_setup_says_so(hub_dir, tmp_path) -> None:
    dm = TextClassificationDataModule(str(hub_dir), cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="setup"):
        _ = dm.meta


def test_batches_are_right_padded_with_true_lengths(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, max_len=8, batch_size=16)
    batch = next(iter(dm.train_dataloader()))
    ids, lengths = batch["input_ids"], batch["lengths"]
    assert ids.shape[1] == lengths.max() <= 8
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == lengths.shape
    for row, n in zip(ids, lengths):
        assert (row[n:] == dm.pad_id).all() and (row[:n] != dm.pad_id).all()


def test_pin_memory_reaches_the_loaders(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, pin_memory=True)
    assert dm.train_dataloader().pin_memory and dm.test_dataloader().pin_memory


@pytest.mark.parametrize(
    ("side", "expected"),
    [("head", [0, 1, 2, 3]), ("tail", [6, 7, 8, 9]), ("head_tail", [0, 7, 8, 9])],
)
def test_truncation_keeps_the_configured_side(side: str, expected: list[int]) -> None:
    assert truncate(np.arange(10), 4, side).tolist() == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_len": 0}, "data.max_len=0"),
        ({"val_fraction": 1.0}, "data.val_fraction=1.0"),
        ({"batch_size": 0}, "data.batch_size=0"),
        ({"truncation": "middle"}, "data.truncation='middle'"),
        ({"vocab_size": None, "tokenizer": "bpe"}, r"data.vocab_size=None: .*wordlevel"),
        ({"min_frequency": 0}, "data.min_frequency=0: an integer >= 1"),
        ({"max_len": 0}, "data.max_len=0: an integer >= 1"),
        (
            {"num_classes": 1},
            r"data.num_classes=1: null \(counted from the labels\) or an integer >= 2",
        ),
    ],
)
def test_bad_settings_name_the_key_and_value(kwargs, message, tmp_path) -> None:
    with pytest.raises(ConfigError, match=message):
        TextClassificationDataModule(str(tmp_path), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"val_split": "dev"},
            r"^data\.val_split='dev': no such split \(found \['test', 'train', 'validation'\]\)$",
        ),
        ({"test_split": "eval"}, r"^data\.test_split='eval': no such split"),
        (
            {"text_column": "text"},
            r"^data\.text_column='text': .* no such column \(found \['sentence', 'topic'\]\)$",
        ),
        ({"label_column": "label"}, r"^data\.label_column='label': .* no such column"),
        (
            {"num_classes": 3},
            r"^data\.num_classes=3: .* 4 classes \['world', 'sports', 'business', 'science'\]$",
        ),
    ],
)
def test_a_dataset_that_does_not_fit_the_config_is_one_line(
    multiclass_dir, tmp_path, kwargs, message
) -> None:
    args = {**TOPICS, "val_split": "validation", **kwargs}
    with pytest.raises(ConfigError, match=message):
        _dm(multiclass_dir, tmp_path, **args)


def test_a_damaged_cache_is_detected_and_rebuilt(hub_dir, tmp_path, caplog) -> None:
    first = _dm(hub_dir, tmp_path)
    arrow = next((first.cache_path / "train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    second = TextClassificationDataModule(str(hub_dir), cache_dir=str(tmp_path), vocab_size=100)
    second.setup("fit")
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    np.testing.assert_array_equal(second.splits["train"].flat, first.splits["train"].flat)


def test_a_slice_of_the_test_batches_holds_both_classes_and_repeats(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, eval_batch_size=16)
    first = next(iter(dm.test_dataloader()))
    assert 0 < first["labels"].float().mean() < 1
    loader = dm.test_dataloader()
    next(iter(loader))
    torch.testing.assert_close(next(iter(loader))["input_ids"], first["input_ids"])


def test_training_epochs_reshuffle_by_themselves(hub_dir, tmp_path) -> None:
    loader = _dm(hub_dir, tmp_path, batch_size=16).train_dataloader()
    first, second = ([b["input_ids"].tolist() for b in loader] for _ in range(2))
    assert len(first) == len(second) and first != second
