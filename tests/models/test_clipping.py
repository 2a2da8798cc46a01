import functools

import pytest
import torch
from lightning import Callback, Trainer
from omegaconf import OmegaConf

from rnnlab.models import RNNClassifier
from rnnlab.models.classifier import TrainingDiverged
from rnnlab.tasks.train import route_clipping
from tests.conftest import item_loader, quiet_trainer
from tests.models.test_tbptt import _memory_items


class RecordPreStep(Callback):
    """What the optimizer really used (the closure runs inside step(), so read them after it)."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.max_abs: list[float] = []

    def on_train_start(self, trainer, pl_module) -> None:
        def hook(optimizer, args, kwargs):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            self.norms.append(
                float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            )
            self.max_abs.append(max(float(g.abs().max()) for g in grads))

        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(hook)


def _fit(
    tbptt: int | None, precision: str, clip: float, algorithm: str
) -> tuple[RecordPreStep, Trainer]:
    torch.manual_seed(0)
    model = RNNClassifier(
        vocab_size=20, pad_id=0, cell="lstm", embedding_dim=8, hidden_size=8, tbptt_steps=tbptt
    )
    trainer_cfg = OmegaConf.create(
        {"gradient_clip_val": clip, "gradient_clip_algorithm": algorithm}
    )
    routed = {**trainer_cfg, **route_clipping(trainer_cfg, model)}
    record = RecordPreStep()
    trainer = quiet_trainer(
        max_steps=6,
        precision=precision,
        callbacks=[record],
        **routed,
    )
    loader = item_loader(_memory_items(16), 8)
    trainer.fit(model, loader)
    return record, trainer


@pytest.mark.parametrize("tbptt", [None, 5], ids=["automatic", "tbptt"])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_clipped_norm_never_exceeds_the_clip_value(tbptt, precision) -> None:
    record, trainer = _fit(tbptt, precision, clip=1e-3, algorithm="norm")
    assert record.norms and max(record.norms) <= 1e-3 * (1 + 1e-3)
    assert trainer.callback_metrics["train/clip_frac"] == 1.0
    assert trainer.callback_metrics["train/grad_norm"] > 1e-3  # logged before clipping


@pytest.mark.parametrize("tbptt", [None, 5], ids=["automatic", "tbptt"])
def test_clip_by_value_bounds_every_gradient_entry(tbptt) -> None:
    record, _ = _fit(tbptt, "32-true", clip=1e-4, algorithm="value")
    assert max(record.max_abs) <= 1e-4 * (1 + 1e-6)


@pytest.mark.parametrize("tbptt", [None, 5], ids=["automatic", "tbptt"])
def test_trainer_clipping_is_handed_to_the_model_so_lightning_neither_repeats_nor_refuses_it(
    tbptt,
) -> None:
    model = RNNClassifier(vocab_size=20, pad_id=0, tbptt_steps=tbptt)
    routed = route_clipping(
        OmegaConf.create({"gradient_clip_val": 0.5, "gradient_clip_algorithm": "value"}), model
    )
    assert routed == {"gradient_clip_val": None, "gradient_clip_algorithm": None}
    assert (model.clip_val, model.clip_algorithm) == (0.5, "value")


def test_fused_adamw_clips_under_bf16_when_the_model_clips() -> None:
    torch.manual_seed(0)
    model = RNNClassifier(
        vocab_size=20,
        pad_id=0,
        embedding_dim=8,
        hidden_size=8,
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2, fused=True),
    )
    routed = route_clipping(OmegaConf.create({"gradient_clip_val": 1e-3}), model)
    record = RecordPreStep()
    trainer = quiet_trainer(max_steps=4, precision="bf16-mixed", callbacks=[record], **routed)
    trainer.fit(model, item_loader(_memory_items(16), 8))
    assert record.norms and max(record.norms) <= 1e-3 * (1 + 1e-3)


class PoisonWeights(Callback):
    def __init__(self, at_step: int = 3) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                pl_module.embedding.weight.fill_(float("nan"))


@pytest.mark.parametrize("tbptt", [None, 5], ids=["automatic", "tbptt"])
def test_non_finite_loss_stops_training_with_a_message_naming_the_step(tbptt) -> None:
    model = RNNClassifier(vocab_size=20, pad_id=0, tbptt_steps=tbptt)
    trainer = quiet_trainer(
        max_steps=20,
        callbacks=[PoisonWeights()],
    )
    loader = item_loader(_memory_items(64), 4)
    with pytest.raises(
        TrainingDiverged, match=r"train/loss=nan at global step 3 .*gradient_clip_val"
    ):
        trainer.fit(model, loader)


def test_default_optimizer_config_clips_under_bf16(hub_dir, cache_dir, tmp_path) -> None:
    """The configured optimizer, not a test-made one: a fused AdamW made Lightning refuse this."""
    from rnnlab.tasks.train import train
    from tests.conftest import TINY, compose_cfg

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
    from rnnlab.tasks.train import train
    from tests.conftest import TINY, compose_cfg

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
