"""The language model: every encoder reads chunks with a carried state as one sequence, the
state carries across batches detached, every decoder gives a distribution, and sampling."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from lightning import Callback, LightningModule, Trainer

from rnnlab.models import RNNLanguageModel
from rnnlab.utils import ConfigError
from tests.conftest import quiet_trainer
from tests.models.conftest import DECODERS, ENCODERS, LM_META, language_model, stream_loader

VOCAB = LM_META.vocab_size


def _model(encoder: str = "lstm", decoder: str = "tied", *extra: str) -> RNNLanguageModel:
    return language_model(encoder, *extra, decoder=decoder)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_chunks_with_the_carried_state_read_like_the_whole_sequence(encoder: str) -> None:
    model = _model(encoder, "tied", "model.num_layers=2").eval()
    ids = torch.randint(1, VOCAB, (2, 12))
    whole, _ = model(ids)
    first, state = model(ids[:, :5])
    second, _ = model(ids[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


class _StateRecorder(Callback):
    def __init__(self) -> None:
        self.before: list[tuple[int, Any]] = []
        self.after: list[Any] = []

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        self.before.append((trainer.current_epoch, pl_module._state))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self.after.append(pl_module._state)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_hidden_state_carries_across_batches_detached_and_resets_each_epoch(encoder: str) -> None:
    model = _model(encoder, "tied", "model.scheduler=null")
    recorder = _StateRecorder()
    loader = stream_loader(n=100)
    trainer = quiet_trainer(max_epochs=2, callbacks=[recorder])
    trainer.fit(model, train_dataloaders=loader)
    per_epoch = len(loader)
    assert len(recorder.before) == 2 * per_epoch
    for i, (epoch, state) in enumerate(recorder.before):
        if i % per_epoch == 0:
            assert state is None, f"epoch {epoch} must start from a zero state"
            continue
        assert state is recorder.after[i - 1]
        tensors = torch.utils._pytree.tree_leaves(state)
        assert tensors and all(not t.requires_grad for t in tensors)  # no gradient crosses
        assert all(t.numel() == 3 * 8 for t in tensors)  # 3 streams x hidden 8


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_decoder_gives_a_distribution_and_a_matching_loss(decoder: str) -> None:
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
    model = _model("lstm", "tied")
    assert model.decoder.weight is model.embedding.weight and model.decoder.project is None
    wide = _model("lstm", "tied", "model.hidden_size=12")
    assert wide.decoder.project.out_features == 8  # hidden -> embedding size before the tied layer


def test_bad_adaptive_settings_are_one_line() -> None:
    with pytest.raises(
        ConfigError, match=r"^model\.decoder\.cutoffs=\[10, 60\]: increasing integers"
    ):
        _model("lstm", "adaptive", "model.decoder.cutoffs=[10,60]")
    with pytest.raises(ConfigError, match=r"^model\.decoder\.div_value=4\.0: .*hidden_size=8"):
        _model("lstm", "adaptive", "model.decoder.div_value=4.0")


def test_every_lm_parameter_is_in_one_layer_group_and_one_decayed_optimizer_group() -> None:
    model = _model("lstm", "adaptive", "model.num_layers=2", "model.scheduler=null")
    model.lr_decay = 2.6  # (conf/model/common/lm.yaml does not list lr_decay)
    groups = model.layer_groups()
    assert len(groups) == 4  # embedding, 2 recurrent depths, the decoder
    grouped = [id(p) for group in groups for p in group]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    optimizer = model.configure_optimizers()
    in_optimizer = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(in_optimizer) == sorted(grouped)
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert lrs == pytest.approx([3e-3 / 2.6**3, 3e-3 / 2.6**2, 3e-3 / 2.6, 3e-3])


def test_validation_reports_token_weighted_perplexity() -> None:
    model = _model("rnn", "adaptive")
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3)
    trainer.fit(model, train_dataloaders=stream_loader(), val_dataloaders=stream_loader(n=101))
    metrics = trainer.callback_metrics
    torch.testing.assert_close(metrics["val/ppl"], metrics["val/loss"].exp())
    assert 1 < float(metrics["val/ppl"]) < float("inf")


def test_sampling_is_seeded_and_stops_at_the_stop_token() -> None:
    model = _model().eval()
    a = model.sample([1, 2, 3], 20, generator=torch.Generator().manual_seed(0))
    b = model.sample([1, 2, 3], 20, generator=torch.Generator().manual_seed(0))
    assert a == b and len(a) == 20 and all(0 < t < VOCAB for t in a)  # never the pad id
    stopped = model.sample([1], 500, stop_id=a[0], generator=torch.Generator().manual_seed(0))
    assert stopped == [a[0]]


@pytest.mark.parametrize("decoder", ["tied", "adaptive"])
def test_trains_under_mixed_precision_with_clipping(decoder: str) -> None:
    model = _model("lstm", decoder)
    model.clip_val = 0.5
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, precision="bf16-mixed")
    trainer.fit(model, train_dataloaders=stream_loader())
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    tensors = torch.utils._pytree.tree_leaves(model._state)
    assert all(t.dtype == torch.float32 for t in tensors)  # CPU recurrence stays fp32
