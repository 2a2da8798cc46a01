"""Clipping, the logged gradient norm and clip fraction, and the divergence stop: the base
RecurrentModule owns them, so the classifier (automatic or truncated BPTT) and the language
model get the same."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
from lightning import Callback, LightningModule, Trainer
from omegaconf import OmegaConf

from rnnlab.models import RecurrentModule, TrainingDiverged
from rnnlab.run.train import route_clipping
from tests.conftest import TINY, compose_cfg, item_loader, quiet_trainer
from tests.lm_helpers import LM_TINY, write_lm_layout
from tests.models.conftest import classifier, language_model, memory_items, stream_loader


class RecordPreStep(Callback):
    """What the optimizer really used (the closure runs inside step(), so read them after it)."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.max_abs: list[float] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            self.norms.append(float(torch.nn.utils.get_total_norm(grads)))
            self.max_abs.append(max(float(g.abs().max()) for g in grads))

        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(hook)


def _model(kind: str) -> RecurrentModule:
    if kind == "lm":
        return language_model("lstm", "model.scheduler=null")
    tbptt = ["model.tbptt_steps=5"] if kind == "tbptt" else []
    return classifier("lstm", "max", "model.scheduler=null", *tbptt)


def _loader(kind: str, batches: int = 64) -> Any:
    return stream_loader() if kind == "lm" else item_loader(memory_items(batches), 8)


def _fit(
    kind: str, clip: float, algorithm: str, precision: str = "32-true", **model_settings: Any
) -> tuple[RecordPreStep, Trainer]:
    model = _model(kind)
    for key, value in model_settings.items():
        setattr(model, key, value)
    trainer_cfg = OmegaConf.create(
        {"gradient_clip_val": clip, "gradient_clip_algorithm": algorithm}
    )
    record = RecordPreStep()
    trainer = quiet_trainer(
        max_steps=6,
        precision=precision,
        callbacks=[record],
        log_every_n_steps=1,
        **route_clipping(trainer_cfg, model),
    )
    trainer.fit(model, _loader(kind, 16))
    return record, trainer


KINDS = ["automatic", "tbptt", "lm"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_clipped_norm_never_exceeds_the_clip_value(kind: str, precision: str) -> None:
    """Measured at the optimizer (a step post-hook), for the classifier, truncated BPTT and the
    language model, in float32 and bf16-mixed. Catches clipping skipped under bf16-mixed (or
    for manual optimization, or for the LM), clipping before the gradients are final, and
    train/grad_norm logged after clipping instead of before."""
    record, trainer = _fit(kind, clip=1e-3, algorithm="norm", precision=precision)
    assert len(record.norms) == 6 and max(record.norms) <= 1e-3 * (1 + 1e-3)
    assert trainer.callback_metrics["train/clip_frac"] == 1.0
    assert trainer.callback_metrics["train/grad_norm"] > 1e-3  # logged before clipping


@pytest.mark.parametrize("kind", KINDS)
def test_without_clipping_the_grad_norm_is_logged_and_clip_frac_is_zero(kind: str) -> None:
    record, trainer = _fit(kind, clip=None, algorithm=None)
    assert max(record.norms) > 1e-3
    assert trainer.callback_metrics["train/clip_frac"] == 0.0
    assert trainer.callback_metrics["train/grad_norm"] == pytest.approx(record.norms[-1], rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_clip_by_value_bounds_every_gradient_entry(kind: str) -> None:
    record, trainer = _fit(kind, clip=1e-4, algorithm="value")
    assert max(record.max_abs) <= 1e-4 * (1 + 1e-6)
    assert trainer.callback_metrics["train/clip_frac"] == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_trainer_clipping_is_handed_to_the_model_so_lightning_neither_repeats_nor_refuses_it(
    kind: str,
) -> None:
    model = _model(kind)
    routed = route_clipping(
        OmegaConf.create({"gradient_clip_val": 0.5, "gradient_clip_algorithm": "value"}), model
    )
    assert routed == {"gradient_clip_val": None, "gradient_clip_algorithm": None}
    assert (model.clip_val, model.clip_algorithm) == (0.5, "value")


@pytest.mark.parametrize("kind", ["automatic", "lm"])
def test_fused_adamw_clips_under_bf16_when_the_model_clips(kind: str) -> None:
    fused = functools.partial(torch.optim.AdamW, lr=1e-2, fused=True)
    record, _ = _fit(
        kind, clip=1e-3, algorithm="norm", precision="bf16-mixed", optimizer_factory=fused
    )
    assert record.norms and max(record.norms) <= 1e-3 * (1 + 1e-3)


class PoisonWeights(Callback):
    def __init__(self, at_step: int = 3) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                pl_module.embedding.weight.fill_(float("nan"))


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_loss_stops_training_with_a_message_naming_the_step(kind: str) -> None:
    trainer = quiet_trainer(max_steps=20, callbacks=[PoisonWeights()])
    with pytest.raises(
        TrainingDiverged, match=r"^train/loss=nan at global step 3 .*gradient_clip_val"
    ) as err:
        trainer.fit(_model(kind), _loader(kind))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_gradient_stops_training_before_the_weights_change(kind: str) -> None:
    model = _model(kind)
    top = next(p for p in reversed(list(model.parameters())) if p.requires_grad)
    top.register_hook(lambda grad: grad * float("nan"))  # a finite loss, a NaN gradient
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match=r"^train/grad_norm=nan at global step 0 "):
        quiet_trainer(max_steps=5).fit(model, _loader(kind))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_default_optimizer_config_clips_under_bf16(hub_dir, cache_dir, tmp_path) -> None:
    """The configured optimizer, not a test-made one: a fused AdamW made Lightning refuse this."""
    from rnnlab.run.train import train

    overrides = [
        *TINY,
        "model=lstm",
        "debug=fdr",
        "trainer.precision=bf16-mixed",
        "trainer.gradient_clip_val=0.5",
    ]
    for extra in ([], ["model.tbptt_steps=4"]):
        assert "test/acc" in train(
            compose_cfg("train", overrides + extra, tmp_path, cache_dir, hub_dir)
        )


def test_diverged_run_exits_with_one_line_and_keeps_a_finite_last_checkpoint(
    hub_dir, cache_dir, tmp_path, capsys
) -> None:
    from rnnlab.run.train import train

    overrides = [
        *TINY,
        "model=gru",
        "trainer.max_epochs=3",
        "callbacks.early_stopping=null",
        "+callbacks.poison._target_=tests.models.test_clipping.PoisonWeights",
        "+callbacks.poison.at_step=35",
    ]
    with pytest.raises(SystemExit) as exit_info:
        train(compose_cfg("train", overrides, tmp_path, cache_dir, hub_dir))
    assert exit_info.value.code == 2
    assert "train/loss=nan at global step 35" in capsys.readouterr().err.strip().splitlines()[-1]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 27  # the end of the first epoch, before the poison
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert not (tmp_path / "metrics.json").exists()


class PoisonGradient(Callback):
    """At global step `at_step` one gradient entry becomes NaN after a finite loss: callbacks'
    on_before_optimizer_step runs before the model's, where the norm is checked."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if trainer.global_step == self.at_step:
            grad = next(p.grad for p in pl_module.parameters() if p.grad is not None)
            grad.view(-1)[0] = float("nan")


@pytest.mark.parametrize("kind", ["classifier", "tbptt", "lm"])
def test_a_non_finite_gradient_ends_the_run_in_one_line_with_a_finite_last_checkpoint(
    kind, hub_dir, cache_dir, tmp_path, capsys
) -> None:
    """End to end through train(), ten batches an epoch, the gradient poisoned in the second
    epoch. Catches a missing non-finite-gradient check: the NaN step would reach the weights and
    the run would stop a step later on the loss (or, clipped with a NaN norm, later still),
    naming train/loss; and a crash with a traceback instead of one `error:` line, or a last.ckpt
    written after the poison."""
    from rnnlab.run.train import train

    at_step = 13 if kind == "classifier" else 12 * (1 + 2 * (kind == "tbptt"))
    common = [
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=10",
        "callbacks.early_stopping=null",
        "+callbacks.poison._target_=tests.models.test_clipping.PoisonGradient",
        f"+callbacks.poison.at_step={at_step}",
    ]
    if kind == "lm":
        data = write_lm_layout(tmp_path / "lm_imdb")
        overrides = [*LM_TINY, "model=gru", *common]
    else:
        data = hub_dir
        tbptt = ["model.tbptt_steps=8"] if kind == "tbptt" else []
        overrides = [*TINY, "model=gru", *tbptt, *common]
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train(compose_cfg("train", overrides, out, cache_dir, data))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"error: train/grad_norm=nan at global step {at_step} "), last_line
    assert last_line.endswith("or a lower model.optimizer.lr"), last_line
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < last["global_step"] < at_step  # the end of the first epoch, before the poison
    if kind != "tbptt":
        assert last["global_step"] == 10
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert not (out / "metrics.json").exists()
