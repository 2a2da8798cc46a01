import hydra
import numpy as np
import pytest
import torch

import rnnlab.data.lm as lm_module
from rnnlab.data import LanguageModelDataModule, TextClassificationDataModule
from rnnlab.data.lm import ChunkSampler, StreamChunks
from rnnlab.data.sampler import ResumableDataLoader
from rnnlab.data.tokenizer import EOS
from rnnlab.utils import ConfigError
from tests.lm_helpers import TEST_ONLY_WORD, write_lm_layout

PAD = 0


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return write_lm_layout(tmp_path_factory.mktemp("lm_imdb"))


def _epoch(stream: np.ndarray, batch_size: int, steps: int, world: int) -> list[list[dict]]:
    """Every rank's batches for one epoch."""
    return [
        list(StreamChunks.layout(stream, batch_size, steps, PAD, num_replicas=world, rank=rank))
        for rank in range(world)
    ]


@pytest.mark.parametrize("n", [2, 97, 100, 101, 1000])
@pytest.mark.parametrize(("batch_size", "steps", "world"), [(1, 7, 1), (4, 5, 1), (3, 10, 2)])
def test_every_token_is_an_input_and_a_target_once_per_epoch(n, batch_size, steps, world) -> None:
    stream = np.arange(1, n + 1)  # distinct non-pad tokens
    ranks = _epoch(stream, batch_size, steps, world)
    assert len({len(batches) for batches in ranks}) == 1  # DDP: equal batch counts
    inputs, targets = [], []
    for batches in ranks:  # rank-major, then row, then time: the stream's own order
        assert all(b["input_ids"].shape == (batch_size, b["targets"].size(1)) for b in batches)
        assert all(b["input_ids"].size(1) <= steps for b in batches)
        rows_x = torch.cat([b["input_ids"] for b in batches], dim=1)
        rows_y = torch.cat([b["targets"] for b in batches], dim=1)
        for x, y in zip(rows_x, rows_y):
            inputs.extend(x[y != PAD].tolist())
            targets.extend(y[y != PAD].tolist())
    assert targets == stream[1:].tolist()
    assert inputs == stream[:-1].tolist()
    lengths = sum(int(b["lengths"].sum()) for batches in ranks for b in batches)
    assert lengths == n - 1  # what throughput counts: real targets


def test_each_row_continues_where_the_previous_batch_left_it() -> None:
    batches = list(StreamChunks.layout(np.arange(1, 200), batch_size=4, steps=6, pad_id=PAD))
    for before, after in zip(batches, batches[1:]):
        torch.testing.assert_close(after["input_ids"][:, 0], before["targets"][:, -1])


def test_a_resumed_loader_starts_with_the_next_chunk() -> None:
    chunks = StreamChunks.layout(np.arange(1, 100), batch_size=2, steps=5, pad_id=PAD)
    loader = ResumableDataLoader(
        chunks, batch_sampler=ChunkSampler(len(chunks)), collate_fn=lambda b: b[0]
    )
    first = list(loader)
    loader.load_state_dict({"epoch": 0, "batches": 3})
    resumed = list(loader)
    assert len(resumed) == len(first) - 3
    torch.testing.assert_close(resumed[0]["input_ids"], first[3]["input_ids"])
    assert len(list(loader)) == len(first)  # the skip applies once


def test_datamodule_trains_on_unsupervised_and_train_reviews_and_tests_on_test(
    lm_dir, tmp_path
) -> None:
    dm = LanguageModelDataModule(
        str(lm_dir), cache_dir=str(tmp_path), vocab_size=1000, tbptt_steps=8, batch_size=4
    )
    dm.setup("fit")
    eos = dm.tokenizer.token_to_id(EOS)
    reviews = sum(int((dm.streams[name] == eos).sum()) for name in ("train", "val"))
    assert reviews == 216 + 120  # train less the classifier's 10% validation, + unsupervised
    assert all(s[-1] == eos for s in dm.streams.values())  # each review ended by <eos>
    assert int((dm.streams["val"] == eos).sum()) == round(336 * 0.02)
    # the test reviews are only read: their own word is not in the vocabulary
    assert dm.tokenizer.token_to_id(TEST_ONLY_WORD) is None
    assert int((dm.streams["test"] == eos).sum()) == 120  # every test review
    assert next(iter(dm.test_dataloader()))["input_ids"].shape == (64, 8)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 8) and batch["targets"].shape == (4, 8)
    again = LanguageModelDataModule(
        str(lm_dir), cache_dir=str(tmp_path), vocab_size=1000, tbptt_steps=8
    )
    again.setup("fit")  # from the cache
    assert again.tokenizer_json == dm.tokenizer_json
    np.testing.assert_array_equal(again.streams["train"], dm.streams["train"])


def test_the_test_split_is_refused(lm_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.splits=\['train', 'test'\]: .*never test"):
        LanguageModelDataModule(str(lm_dir), cache_dir=str(tmp_path), splits=["train", "test"])
    with pytest.raises(ConfigError, match=r"^data\.test_split='train': null or a split not"):
        LanguageModelDataModule(str(lm_dir), cache_dir=str(tmp_path), test_split="train")


def test_without_a_test_split_testing_is_one_line(lm_dir, tmp_path) -> None:
    dm = LanguageModelDataModule(str(lm_dir), cache_dir=str(tmp_path), test_split=None)
    dm.setup("fit")
    assert set(dm.streams) == {"train", "val"}
    with pytest.raises(ConfigError, match=r"^data\.test_split=None: .* no test texts"):
        dm.test_dataloader()


def test_a_missing_unsupervised_split_is_one_line(hub_dir, tmp_path) -> None:
    dm = LanguageModelDataModule(str(hub_dir), cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^data\.splits='unsupervised': no such split"):
        dm.prepare_data()


def test_another_text_column_and_split_names(multiclass_dir, tmp_path) -> None:
    dm = LanguageModelDataModule(
        str(multiclass_dir),
        cache_dir=str(tmp_path),
        text_column="sentence",
        label_column="topic",
        splits=["train", "validation"],
        vocab_size=100,
    )
    dm.setup("fit")
    eos = dm.tokenizer.token_to_id(EOS)
    assert sum(int((dm.streams[n] == eos).sum()) for n in ("train", "val")) == 360 + 80
    assert dm.cache_path.name.startswith(f"{multiclass_dir.name.replace('_', '-')}-lm-")


def test_meta_rebuilds_the_same_data_module_with_its_tokenizer(
    lm_dir, tmp_path, monkeypatch
) -> None:
    dm = LanguageModelDataModule(str(lm_dir), cache_dir=str(tmp_path), vocab_size=100)
    dm.setup("fit")
    meta = dm.meta
    assert meta.label_names == () and meta.vocab_size == dm.vocab_size
    assert meta.data_config["_target_"] == "rnnlab.data.lm.LanguageModelDataModule"
    monkeypatch.setattr(lm_module, "load_source", lambda *a: pytest.fail("the cache is reused"))
    again = hydra.utils.instantiate(meta.data_config, tokenizer_json=meta.tokenizer_json)
    again.setup("fit")
    assert again.meta == meta
    np.testing.assert_array_equal(again.streams["val"], dm.streams["val"])


def test_the_classifiers_validation_reviews_stay_out_of_the_lm(
    lm_dir, tmp_path, monkeypatch
) -> None:
    read: list[str] = []
    encode = lm_module.encode_stream

    def recording(texts, tokenizer):
        read.extend(texts)
        return encode(texts, tokenizer)

    monkeypatch.setattr(lm_module, "encode_stream", recording)
    LanguageModelDataModule(
        str(lm_dir), cache_dir=str(tmp_path), vocab_size=100, seed=5
    ).prepare_data()
    splits, _ = TextClassificationDataModule(str(lm_dir), val_fraction=0.1, seed=5).raw_splits()
    train, val = splits["train"], splits["val"]
    assert not set(val["text"]) & set(read)
    assert set(train["text"]) <= set(read)
