"""The data presets compose and build their data module, as `python train.py data=...` does."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from rnnlab.data import LanguageModelDataModule, TextClassificationDataModule
from tests.conftest import compose_cfg


def test_hf_preset_reads_any_dataset_given_its_columns(multiclass_dir, tmp_path) -> None:
    overrides = [
        "data=hf",
        f"data.path={multiclass_dir}",
        "data.text_column=sentence",
        "data.label_column=topic",
        "data.num_classes=4",
        "data.val_split=validation",
        "data.vocab_size=100",
    ]
    cfg = compose_cfg("train", overrides, tmp_path, tmp_path / "cache")
    dm = instantiate(cfg.data)
    dm.setup("fit")
    assert isinstance(dm, TextClassificationDataModule) and dm.meta.num_classes == 4
    assert next(iter(dm.val_dataloader()))["labels"].dtype == torch.int64


def test_hf_preset_needs_a_path(tmp_path) -> None:
    cfg = compose_cfg("train", ["data=hf"], tmp_path, tmp_path / "cache")
    with pytest.raises(Exception, match="path"):
        instantiate(cfg.data)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("imdb", {"path": "stanfordnlp/imdb", "text_column": "text", "val_split": None}),
        (
            "sst2",
            {"path": "stanfordnlp/sst2", "text_column": "sentence", "val_split": "validation"},
        ),
    ],
)
def test_presets_default_to_the_hub_and_to_a_local_copy_when_told(
    preset, expected, tmp_path, monkeypatch
) -> None:
    for name in ("IMDB_DIR", "SST2_DIR"):
        monkeypatch.delenv(name, raising=False)
    cfg = compose_cfg("train", [f"data={preset}"], tmp_path, tmp_path / "cache")
    assert {key: cfg.data[key] for key in expected} == expected
    monkeypatch.setenv(f"{preset.upper()}_DIR", str(tmp_path))
    cfg = compose_cfg("train", [f"data={preset}"], tmp_path, tmp_path / "cache")
    assert cfg.data.path == str(tmp_path)


def test_lm_preset_builds_the_language_model_data(tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["experiment=imdb_lm"], tmp_path, tmp_path / "cache")
    assert isinstance(instantiate(cfg.data), LanguageModelDataModule)
