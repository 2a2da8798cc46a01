"""On the real SST-2 copy ($SST2_DIR, default ../shared/data/sst2), through the data=sst2 preset."""

import os

import pytest
from hydra.utils import instantiate

from tests.conftest import ROOT, compose_cfg

pytestmark = pytest.mark.real_data

REAL_SST2 = os.environ.get("SST2_DIR", str(ROOT.parent / "shared" / "data" / "sst2"))


def test_real_sst2_has_the_published_splits_and_label_names(tmp_path) -> None:
    cfg = compose_cfg("train", ["data=sst2"], tmp_path, tmp_path / "cache", REAL_SST2)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    sizes = tuple(len(dm.splits[s]) for s in ("train", "val", "test"))
    assert sizes == (67349, 872, 1821)
    assert dm.meta.label_names == ("negative", "positive")
    assert dm.vocab_size == 13837  # every distinct training token, + <pad> and <unk>
    assert max(int(dm.splits[s].lengths.max()) for s in dm.splits) <= cfg.data.max_len
    test = [b["labels"] for b in dm.test_dataloader()]
    assert sum(len(labels) for labels in test) == 1821
