from pathlib import Path

import pytest

from rnnlab.data.loading import load_imdb, source_fingerprint
from rnnlab.utils import ConfigError
from tests.conftest import make_reviews


def test_hub_and_acl_layouts_load_the_same_reviews(hub_dir: Path, acl_dir: Path) -> None:
    hub, acl = load_imdb(str(hub_dir)), load_imdb(str(acl_dir))
    for split in ("train", "test"):
        assert sorted(hub[split]["text"]) == sorted(acl[split]["text"])
        assert sorted(zip(hub[split]["text"], hub[split]["label"])) == sorted(
            zip(acl[split]["text"], acl[split]["label"])
        )
        assert hub[split].features["label"].names == ["neg", "pos"]


def test_acl_layout_is_found_from_its_parent_folder(acl_dir: Path) -> None:
    assert len(load_imdb(str(acl_dir.parent))["train"]) == 240


def test_missing_folder_says_where_it_looked_and_how_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.path=.*no such folder.*IMDB_DIR"):
        load_imdb(str(tmp_path / "nope"))


def test_folder_without_test_split_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, labels = make_reviews(10, 0)
    (tmp_path / "plain_text").mkdir()
    pq.write_table(
        pa.table({"text": texts, "label": labels}), tmp_path / "plain_text" / "train-0.parquet"
    )
    with pytest.raises(ConfigError, match="no 'test' split"):
        load_imdb(str(tmp_path))


def test_labels_other_than_0_and_1_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "plain_text").mkdir()
    for split in ("train", "test"):
        table = pa.table({"text": ["a", "b", "c"], "label": [0, 1, 2]})
        pq.write_table(table, tmp_path / "plain_text" / f"{split}-0.parquet")
    with pytest.raises(ConfigError, match=r"labels \[0, 1, 2\]; only 0/1"):
        load_imdb(str(tmp_path))


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    before = source_fingerprint(str(tmp_path))
    (tmp_path / "a.txt").write_text("one more")
    assert source_fingerprint(str(tmp_path)) != before
