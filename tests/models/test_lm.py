import numpy as np
import pytest
import torch
from lightning import Callback
from torch.utils.data import DataLoader

from rnnlab.data.lm import StreamChunks
from rnnlab.models import RNNLanguageModel
from rnnlab.utils import ConfigError
from tests.conftest import quiet_trainer

VOCAB = 50


def _model(cell: str = "lstm", decoder: str = "tied", **kwargs) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(
        vocab_size=VOCAB,
        pad_id=0,
        cell=cell,
        embedding_dim=8,
        hidden_size=8,
        dropout=0.0,
        decoder=decoder,
        cutoffs=[10, 30],
        div_value=2.0,
        **kwargs,
    )


def _loader(batch_size: int = 3, steps: int = 5, n: int = 400) -> DataLoader:
    stream = np.random.default_rng(0).integers(1, VOCAB, n)
    return DataLoader(StreamChunks.layout(stream, batch_size, steps, pad_id=0), batch_size=None)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_chunks_with_the_carried_state_read_like_the_whole_sequence(cell) -> None:
    model = _model(cell).eval()
    ids = torch.randint(1, VOCAB, (2, 12))
    whole, _ = model(ids)
    first, state = model(ids[:, :5])
    second, _ = model(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


class _StateRecorder(Callback):
    def __init__(self) -> None:
        self.before, self.after = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before.append((trainer.current_epoch, pl_module._state))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after.append(pl_module._state)


def test_hidden_state_carries_across_batches_detached_and_resets_each_epoch() -> None:
    model = _model("lstm")
    recorder = _StateRecorder()
    loader = _loader()
    trainer = quiet_trainer(max_epochs=2, callbacks=[recorder], gradient_clip_val=1.0)
    trainer.fit(model, train_dataloaders=loader)
    per_epoch = len(loader)
    for i, (epoch, state) in enumerate(recorder.before):
        if i % per_epoch == 0:
            assert state is None, f"epoch {epoch} must start from a zero state"
            continue
        carried = recorder.after[i - 1]
        assert state is carried
        assert all(not s.requires_grad for s in state)  # no gradient crosses a chunk boundary
        assert state[0].shape == (1, 3, 8)


@pytest.mark.parametrize("decoder", ["full", "tied", "adaptive"])
def test_every_decoder_gives_a_distribution_and_a_matching_loss(decoder) -> None:
    model = _model("gru", decoder).eval()
    ids = torch.randint(1, VOCAB, (2, 6))
    targets = torch.randint(1, VOCAB, (2, 6))
    targets[1, 4:] = 0  # padding: ignored
    outputs, _ = model(ids)
    log_probs = model.log_probs(outputs)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 6))
    loss, count = model.loss(outputs, targets)
    keep = targets != 0
    expected = -log_probs[keep].gather(1, targets[keep].unsqueeze(1)).mean()
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert int(count) == 10


def test_every_adaptive_cluster_gets_a_gradient_when_the_batch_has_none_of_its_words() -> None:
    """DDP all-reduces only once every parameter has a gradient, on every rank."""
    model = _model("lstm", "adaptive")
    ids = torch.randint(1, VOCAB, (2, 6))
    targets = torch.randint(1, 10, (2, 6))  # head words only: no tail cluster runs
    model.training_step({"input_ids": ids, "targets": targets}, 0).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(not p.grad.any() for p in model.decoder.tail.parameters())


def test_tied_decoder_is_the_embedding() -> None:
    model = _model(decoder="tied")
    assert model.decoder.weight is model.embedding.weight
    wide = RNNLanguageModel(
        vocab_size=VOCAB, pad_id=0, embedding_dim=8, hidden_size=12, decoder="tied"
    )
    assert wide.project.out_features == 8  # hidden -> embedding size before the tied layer


def test_bad_adaptive_settings_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^model\.cutoffs=\[10, 60\]: increasing integers"):
        RNNLanguageModel(vocab_size=VOCAB, pad_id=0, decoder="adaptive", cutoffs=[10, 60])
    with pytest.raises(ConfigError, match=r"^model\.div_value=4\.0: .*hidden_size=8"):
        RNNLanguageModel(vocab_size=VOCAB, pad_id=0, hidden_size=8, cutoffs=[10, 30])


def test_validation_reports_token_weighted_perplexity() -> None:
    model = _model("rnn", "adaptive")
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3)
    trainer.fit(model, train_dataloaders=_loader(), val_dataloaders=_loader(n=101))
    metrics = trainer.callback_metrics
    torch.testing.assert_close(metrics["val/ppl"], metrics["val/loss"].exp())
    assert 1 < float(metrics["val/ppl"]) < float("inf")


def test_sampling_is_seeded_and_stops_at_the_stop_token() -> None:
    model = _model().eval()
    a = model.sample([1, 2, 3], 20, generator=torch.Generator().manual_seed(0))
    b = model.sample([1, 2, 3], 20, generator=torch.Generator().manual_seed(0))
    assert a == b and len(a) == 20 and all(0 <= t < VOCAB for t in a)
    stopped = model.sample([1], 500, stop_id=a[0], generator=torch.Generator().manual_seed(0))
    assert stopped == [a[0]]


@pytest.mark.parametrize("decoder", ["tied", "adaptive"])
def test_trains_under_mixed_precision_with_clipping(decoder) -> None:
    model = _model("lstm", decoder)
    trainer = quiet_trainer(
        max_epochs=1, limit_train_batches=3, precision="bf16-mixed", gradient_clip_val=0.5
    )
    trainer.fit(model, train_dataloaders=_loader())
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert all(s.dtype == torch.float32 for s in model._state)  # CPU recurrence stays fp32
