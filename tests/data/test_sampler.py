import numpy as np
import pytest

from rnnlab.data.sampler import BucketBatchSampler, ResumableDataLoader

LENGTHS = np.random.default_rng(0).integers(1, 500, size=1003)


def test_every_example_is_drawn_exactly_once_per_epoch() -> None:
    sampler = BucketBatchSampler(LENGTHS, batch_size=32, pool_factor=4)
    drawn = [i for batch in sampler for i in batch]
    assert sorted(drawn) == list(range(len(LENGTHS)))
    assert len(list(sampler)) == len(sampler)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ranks_get_equal_batch_counts_and_cover_the_data_exactly_once(world: int) -> None:
    samplers = [
        BucketBatchSampler(LENGTHS, 32, pool_factor=4, num_replicas=world, rank=r)
        for r in range(world)
    ]
    per_rank = [list(s) for s in samplers]
    assert len({len(b) for b in per_rank}) == 1
    assert all(len(b) == len(s) for b, s in zip(per_rank, samplers))
    drawn = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(drawn) == list(range(len(LENGTHS)))


def test_set_epoch_reshuffles_and_same_epoch_repeats() -> None:
    sampler = BucketBatchSampler(LENGTHS, 32, seed=1)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_bucketing_keeps_padding_small() -> None:
    sampler = BucketBatchSampler(LENGTHS, 32, pool_factor=50)
    real = sum(LENGTHS[b].sum() for b in sampler)
    padded = sum(LENGTHS[b].max() * len(b) for b in sampler)
    assert 1 - real / padded < 0.05


def test_unshuffled_sampler_is_deterministic_across_epochs() -> None:
    sampler = BucketBatchSampler(LENGTHS, 32, shuffle=False)
    first = list(sampler)
    sampler.set_epoch(3)
    assert list(sampler) == first


def test_start_skips_the_batches_already_trained_on_once() -> None:
    sampler = BucketBatchSampler(LENGTHS, 32, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start=5)
    assert list(sampler) == full[5:]
    assert list(sampler) == full  # the next pass over the same epoch starts from its beginning


def _loader(world: int = 1, rank: int = 0, **kwargs) -> ResumableDataLoader:
    sampler = BucketBatchSampler(LENGTHS, 32, seed=3, num_replicas=world, rank=rank)
    return ResumableDataLoader(
        list(range(len(LENGTHS))), batch_sampler=sampler, collate_fn=list, **kwargs
    )


def _one_epoch(epoch: int, world: int = 1, rank: int = 0) -> list[list[int]]:
    sampler = BucketBatchSampler(LENGTHS, 32, seed=3, num_replicas=world, rank=rank)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_each_pass_over_the_loader_is_the_next_epoch() -> None:
    loader = _loader()
    epochs = [list(loader) for _ in range(3)]
    assert epochs == [_one_epoch(e) for e in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert loader.state_dict() == {"epoch": 2, "batches": len(loader)}


def test_loader_state_resumes_with_the_next_batch_of_the_same_epoch() -> None:
    first = _loader()
    list(first)  # epoch 0
    batches = iter(first)
    seen = [next(batches) for _ in range(7)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 7}
    resumed = _loader()
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # a checkpoint before the first batch keeps its place
    assert seen + list(resumed) == _one_epoch(1)
    assert list(resumed) == _one_epoch(2)  # the skip applies once


def test_state_loaded_after_iter_but_before_the_first_batch_still_applies() -> None:
    """Lightning calls iter() in setup_data, which `estimated_stepping_batches` (OneCycle) runs
    before a resumed run's state is loaded, and trains on that very iterator."""
    first = _loader()
    list(first)  # epoch 0
    batches = iter(first)
    seen = [next(batches) for _ in range(7)]
    resumed = _loader()
    early = iter(resumed)  # built early, at epoch 0
    resumed.load_state_dict(first.state_dict())
    assert seen + list(early) == _one_epoch(1)
    assert list(resumed) == _one_epoch(2)


@pytest.mark.parametrize("limit", [None, 5])
def test_a_checkpoint_at_an_epochs_end_resumes_at_the_next_epochs_start(limit) -> None:
    """`limit`: Lightning's limit_train_batches ends the epoch early."""
    first = _loader(limit_batches=limit or 1.0)
    batches = iter(first)
    for _ in range(limit or len(first)):
        next(batches)
    resumed = _loader(limit_batches=first.limit_batches)
    resumed.load_state_dict(first.state_dict())
    assert list(resumed) == _one_epoch(1)


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_take_equal_batch_counts_every_epoch(world: int) -> None:
    loaders = [_loader(world, rank) for rank in range(world)]
    for epoch in range(2):
        per_rank = [list(loader) for loader in loaders]
        assert len({len(batches) for batches in per_rank}) == 1
        assert per_rank == [_one_epoch(epoch, world, rank) for rank in range(world)]
        drawn = [i for batches in per_rank for batch in batches for i in batch]
        assert sorted(drawn) == list(range(len(LENGTHS)))
