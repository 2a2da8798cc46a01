import socket
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rnnlab.data.loading as loading_module
from rnnlab.data.loading import count_classes, load_source, source_fingerprint, text_splits
from rnnlab.utils import ConfigError

IMDB = {"train": "data.train_split", "test": "data.test_split"}


def _folder(root: Path, **splits: dict[str, list]) -> Path:
    (root / "data").mkdir()
    for split, columns in splits.items():
        pq.write_table(pa.table(columns), root / "data" / f"{split}-0.parquet")
    return root


def _labelled(path: Path, num_classes: int = 2) -> tuple:
    return text_splits(load_source(str(path)), IMDB, "text", "label", num_classes)


def test_hub_and_acl_layouts_load_the_same_reviews(hub_dir: Path, acl_dir: Path) -> None:
    (hub, hub_names), (acl, acl_names) = _labelled(hub_dir), _labelled(acl_dir)
    for split in ("train", "test"):
        assert sorted(zip(hub[split]["text"], hub[split]["label"])) == sorted(
            zip(acl[split]["text"], acl[split]["label"])
        )
    assert hub_names == acl_names == ("neg", "pos")


def test_acl_layout_is_found_from_its_parent_folder(acl_dir: Path) -> None:
    assert len(load_source(str(acl_dir.parent))["train"]) == 240


def test_columns_are_renamed_to_text_and_label(multiclass_dir: Path) -> None:
    found, names = text_splits(
        load_source(str(multiclass_dir)), {"validation": "data.val_split"}, "sentence", "topic", 4
    )
    assert found["validation"].column_names == ["text", "label"]
    assert names == ("world", "sports", "business", "science")


def test_missing_folder_says_where_it_looked_and_how_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.path=.*no such folder.*set data\.path"):
        load_source(str(tmp_path / "nope"))


def test_an_unreachable_hub_is_one_line_saying_how_to_use_a_local_copy(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'stanfordnlp/sst2' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(loading_module, "hub_reachable", lambda: True)  # the Hub fails later
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        ConfigError, match=r"^data\.path='sst2': .*cannot be reached.*local copy"
    ) as err:
        load_source("sst2")
    assert "\n" not in str(err.value)


def test_a_closed_hub_endpoint_is_refused_before_datasets_tries_it(monkeypatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ConfigError, match=r"^data\.path='sst2': the Hugging Face Hub cannot be"):
        load_source("sst2")


def test_folder_without_test_split_is_refused(tmp_path: Path) -> None:
    _folder(tmp_path, train={"text": ["a", "b"], "label": [0, 1]})
    with pytest.raises(
        ConfigError, match=r"^data\.test_split='test': no such split \(found \['train'\]\)"
    ):
        _labelled(tmp_path)


def test_labels_outside_num_classes_are_refused(tmp_path: Path) -> None:
    columns = {"text": ["a", "b", "c"], "label": [0, 1, 2]}
    _folder(tmp_path, train=columns, test=columns)
    with pytest.raises(
        ConfigError, match=r"^data\.num_classes=2: .*labels \[0, 1, 2\]; allowed 0\.\.1"
    ):
        _labelled(tmp_path)
    assert _labelled(tmp_path, num_classes=3)[1] == ("0", "1", "2")


def test_missing_texts_and_labels_are_refused(tmp_path: Path) -> None:
    _folder(
        tmp_path,
        train={"text": ["a", None], "label": [0, 1]},
        test={"text": ["a", "b"], "label": [0, None]},
    )
    raw = load_source(str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"^data\.text_column='text': split 'train' has 1 missing"
    ):
        text_splits(raw, IMDB, "text", "label", 2)
    with pytest.raises(ConfigError, match=r"^data\.label_column='label': split 'test' has missing"):
        text_splits(raw, {"test": "data.test_split"}, "text", "label", 2)


def test_string_labels_become_ids_by_sorted_name_over_every_split(tmp_path: Path) -> None:
    _folder(
        tmp_path,
        train={"text": ["a", "b", "c"], "label": ["pos", "neg", "pos"]},
        test={"text": ["d", "e"], "label": ["mixed", "neg"]},  # a name train lacks
    )
    raw = load_source(str(tmp_path))
    assert count_classes(raw, ["train", "test"], "label") == 3
    splits, names = _labelled(tmp_path, 3)
    assert names == ("mixed", "neg", "pos")
    assert splits["train"]["label"] == [2, 1, 2] and splits["test"]["label"] == [0, 1]


def test_string_labels_in_csv_files_become_ids_too(tmp_path: Path) -> None:
    """A CSV read by `datasets` types its strings large_string, not string."""
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,neg\nc,pos\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("text,label\nd,neg\n", encoding="utf-8")
    splits, names = _labelled(tmp_path, 2)
    assert names == ("neg", "pos")
    assert splits["train"]["label"] == [1, 0, 1] and splits["test"]["label"] == [0]


def test_the_class_count_comes_from_a_class_label_or_the_largest_id(
    hub_dir: Path, tmp_path
) -> None:
    assert count_classes(load_source(str(hub_dir)), ["train", "test"], "label") == 2
    _folder(
        tmp_path, train={"text": ["a", "b"], "label": [0, 3]}, test={"text": ["c"], "label": [1]}
    )
    assert count_classes(load_source(str(tmp_path)), ["train", "test"], "label") == 4


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    before = source_fingerprint(str(tmp_path))
    (tmp_path / "a.txt").write_text("one more")
    assert source_fingerprint(str(tmp_path)) != before
