"""The GPU path on a real CUDA device: cuDNN kernels, 16-mixed and bf16-mixed, truncated BPTT,
clipping, the language model, padding, and checkpoints moving between CPU and GPU.

Marked `gpu` and skipped without CUDA (lightning-hydra-template's RunIf pattern); they run on a
GPU machine through `benchmarks/gpu_check.sh`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.callbacks.gradient_flow import gradient_per_step
from rnnlab.run.train import train
from tests.conftest import ROOT, TINY, compose_cfg, item_loader, quiet_trainer
from tests.models.conftest import (
    ENCODERS,
    classifier,
    language_model,
    memory_items,
    padded_batch,
    stream_loader,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GPU = [o for o in TINY if o != "trainer.accelerator=cpu"] + ["trainer.accelerator=gpu"]
PRECISIONS = ["32-true", "16-mixed", "bf16-mixed"]


@pytest.mark.parametrize("cell", ENCODERS)
def test_fast_dev_run_on_cuda_for_every_encoder(cell, hub_dir, cache_dir, tmp_path) -> None:
    cfg = compose_cfg("train", [*GPU, f"model={cell}", "debug=fdr"], tmp_path, cache_dir, hub_dir)
    assert {"test/acc", "test/f1", "test/auroc", "test/loss"} <= train(cfg).keys()


def _fit_with_tight_clipping(model, precision: str, steps: int = 6) -> None:
    """A clip value far below any real gradient norm: every step must clip. Texts of 80 tokens
    make three chunks at tbptt_steps=32."""
    model.clip_val, model.clip_algorithm = 1e-3, "norm"
    trainer = quiet_trainer(accelerator="gpu", devices=1, precision=precision, max_steps=steps)
    trainer.fit(model, train_dataloaders=item_loader(memory_items(48, length=80), batch_size=8))


def _clipped_every_step(model, precision: str) -> bool:
    """Under 16-mixed the grad scaler skips a step whose gradients overflowed (a NaN norm is
    not "above" the clip value), so up to a few early steps may go unclipped there."""
    skipped = 3 if precision == "16-mixed" else 0
    steps, clipped = model._optimizer_steps, model._clipped_steps
    return steps > skipped and steps - skipped <= clipped <= steps


@pytest.mark.parametrize("tbptt", [None, 32], ids=["full_bptt", "tbptt32"])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("cell", ENCODERS)
def test_every_encoder_trains_and_clips_under_every_precision(cell, precision, tbptt) -> None:
    extra = [] if tbptt is None else [f"model.tbptt_steps={tbptt}"]
    model = classifier(cell, "max", "model.hidden_size=32", *extra)
    _fit_with_tight_clipping(model, precision)
    assert _clipped_every_step(model, precision)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_bidirectional_two_layer_encoder_trains_on_cuda(precision) -> None:
    model = classifier("lstm", "attention", "model.bidirectional=true", "model.num_layers=2")
    _fit_with_tight_clipping(model, precision)
    assert _clipped_every_step(model, precision)


@pytest.mark.parametrize("cell", ENCODERS)
def test_the_language_model_trains_with_the_adaptive_softmax_under_16_mixed(cell) -> None:
    model = language_model(cell, decoder="adaptive")
    model.clip_val = 0.5
    trainer = quiet_trainer(accelerator="gpu", devices=1, precision="16-mixed", max_steps=8)
    trainer.fit(model, train_dataloaders=stream_loader())
    assert trainer.global_step > 0
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


@pytest.mark.parametrize("cell", ENCODERS)
def test_padding_never_reaches_a_texts_logit_on_cuda(cell) -> None:
    model = classifier(cell, "last").cuda().eval()
    batch = padded_batch([9, 4, 1])
    with torch.no_grad():
        together = model(batch["input_ids"].cuda(), batch["lengths"].cuda())
        for row, length in enumerate(batch["lengths"].tolist()):
            alone = model(batch["input_ids"][row : row + 1, :length].cuda(), torch.tensor([length]))
            torch.testing.assert_close(together[row : row + 1], alone, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("cell", ENCODERS)
def test_gradient_flow_is_measured_on_cuda_in_eval_mode(cell) -> None:
    """cuDNN refuses an RNN backward in eval mode; the measurement must still run there."""
    model = classifier(cell, "last").cuda()
    norms = gradient_per_step(model, padded_batch([12, 6]))
    assert norms.shape == (12,) and bool((norms > 0).all())
    assert model.training


def _trained(accelerator: str, hub_dir: Path, cache_dir: Path, out: Path) -> Path:
    overrides = [*TINY, "model=gru", "trainer.max_epochs=2", f"trainer.accelerator={accelerator}"]
    train(compose_cfg("train", overrides, out, cache_dir, hub_dir))
    return out / "checkpoints" / "best.ckpt"


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(ROOT / name), *args], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.parametrize(
    ("trained_on", "used_on"), [("cpu", "gpu"), ("gpu", "cpu")], ids=["cpu_to_gpu", "gpu_to_cpu"]
)
def test_a_checkpoint_moves_between_cpu_and_gpu_for_eval_and_predict(
    trained_on, used_on, hub_dir, cache_dir, tmp_path
) -> None:
    ckpt = _trained(trained_on, hub_dir, cache_dir, tmp_path / "run")
    common = [f"paths.cache_dir={cache_dir}", f"hydra.run.dir={tmp_path / 'eval'}"]
    _script("eval.py", f"ckpt_path={ckpt}", f"trainer.accelerator={used_on}", *common, cwd=tmp_path)
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-3)
    device = "cuda" if used_on == "gpu" else "cpu"
    answer = _script(
        "predict.py", f"ckpt_path={ckpt}", f"device={device}", "text=superb", cwd=tmp_path
    )
    assert json.loads(answer.stdout)["label"] in ("neg", "pos")
