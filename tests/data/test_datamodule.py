from pathlib import Path

import numpy as np
import pytest
import torch

import rnnlab.data.datamodule as datamodule_module
from rnnlab.data import IMDBDataModule
from rnnlab.data.dataset import truncate
from rnnlab.utils import ConfigError


def _dm(data: Path, cache: Path, **kwargs) -> IMDBDataModule:
    dm = IMDBDataModule(str(data), cache_dir=str(cache), vocab_size=100, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_validation_is_carved_from_train_stratified_and_test_is_whole(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, val_fraction=0.25)
    assert len(dm.splits["train"]) == 180 and len(dm.splits["val"]) == 60
    assert len(dm.splits["test"]) == 120
    assert dm.splits["val"].labels.mean() == pytest.approx(0.5)


def test_second_setup_reads_the_cache_without_loading_or_tokenizing(
    hub_dir, tmp_path, monkeypatch
) -> None:
    first = _dm(hub_dir, tmp_path)

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(datamodule_module, "load_imdb", fail)
    monkeypatch.setattr(datamodule_module, "build_tokenizer", fail)
    second = _dm(hub_dir, tmp_path)
    assert second.tokenizer_json == first.tokenizer_json
    np.testing.assert_array_equal(second.splits["train"].flat, first.splits["train"].flat)


def test_cache_key_changes_with_tokenizer_settings_not_with_max_len(hub_dir, tmp_path) -> None:
    base = IMDBDataModule(str(hub_dir), cache_dir=str(tmp_path), vocab_size=100)
    assert (
        IMDBDataModule(str(hub_dir), cache_dir=str(tmp_path), vocab_size=101).cache_path
        != base.cache_path
    )
    assert (
        IMDBDataModule(str(hub_dir), cache_dir=str(tmp_path), vocab_size=100, max_len=7).cache_path
        == base.cache_path
    )


def test_the_training_runs_tokenizer_reuses_its_cache_and_another_tokenizer_does_not(
    hub_dir, tmp_path, monkeypatch
) -> None:
    trained = _dm(hub_dir, tmp_path)
    other = _dm(hub_dir, tmp_path / "other", tokenizer="bpe").tokenizer_json
    monkeypatch.setattr(
        datamodule_module, "load_imdb", lambda *a: (_ for _ in ()).throw(AssertionError("loaded"))
    )
    again = _dm(hub_dir, tmp_path, tokenizer_json=trained.tokenizer_json)
    assert again.cache_path == trained.cache_path
    given = IMDBDataModule(
        str(hub_dir), cache_dir=str(tmp_path), vocab_size=100, tokenizer_json=other
    )
    assert given.cache_path != trained.cache_path


def test_vocab_size_and_pad_id_come_from_the_tokenizer(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path)
    assert dm.vocab_size <= 100 and dm.pad_id == 0


def test_batches_are_right_padded_with_true_lengths(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, max_len=8, batch_size=16)
    batch = next(iter(dm.train_dataloader()))
    ids, lengths = batch["input_ids"], batch["lengths"]
    assert ids.shape[1] == lengths.max() <= 8
    for row, n in zip(ids, lengths):
        assert (row[n:] == dm.pad_id).all() and (row[:n] != dm.pad_id).all()


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
    ],
)
def test_bad_settings_name_the_key_and_value(kwargs, message, tmp_path) -> None:
    with pytest.raises(ConfigError, match=message):
        IMDBDataModule(str(tmp_path), **kwargs)


def test_a_damaged_cache_is_detected_and_rebuilt(hub_dir, tmp_path, caplog) -> None:
    first = _dm(hub_dir, tmp_path)
    arrow = next((first.cache_path / "train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    second = IMDBDataModule(str(hub_dir), cache_dir=str(tmp_path), vocab_size=100)
    second.setup("fit")
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    np.testing.assert_array_equal(second.splits["train"].flat, first.splits["train"].flat)


def test_a_slice_of_the_test_batches_holds_both_classes_and_repeats(hub_dir, tmp_path) -> None:
    dm = _dm(hub_dir, tmp_path, eval_batch_size=16)
    first = next(iter(dm.test_dataloader()))
    assert 0 < first["labels"].mean() < 1
    torch.testing.assert_close(next(iter(dm.test_dataloader()))["input_ids"], first["input_ids"])
