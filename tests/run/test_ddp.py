"""Two CPU processes (gloo) launched the way `python train.py trainer.devices=2` launches them."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning import Callback, LightningModule, Trainer

from tests.conftest import ROOT, TINY
from tests.lm_helpers import LM_TINY, write_lm_layout


def _grad_norm(module: torch.nn.Module) -> float:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0


class RecordClipping(Callback):
    """Per rank, the largest gradient norm before the model clips (callbacks' on_before_optimizer_step
    runs before the module's) and the largest the optimizer received (a step post-hook: under
    automatic optimization the backward closure runs inside step()), written to
    `<path>.rank<r>.json` at the end of training. Started inside train.py's ranks, so it has to
    be importable from there (PYTHONPATH=repo root)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.before, self.after, self.steps = 0.0, 0.0, 0
        self.module: LightningModule | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.module = pl_module
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(self._after_step)

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, *_: Any
    ) -> None:
        self.before = max(self.before, _grad_norm(pl_module))

    def _after_step(self, *_: Any) -> None:
        self.after = max(self.after, _grad_norm(self.module))
        self.steps += 1

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        record = {"before": self.before, "after": self.after, "steps": self.steps}
        Path(f"{self.path}.rank{trainer.global_rank}.json").write_text(json.dumps(record))


def _clipping_records(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(tmp_path.glob("clipping.rank*.json"))]


def _record_clipping(tmp_path: Path) -> list[str]:
    return [
        "+callbacks.record_clipping._target_=tests.run.test_ddp.RecordClipping",
        f"+callbacks.record_clipping.path={tmp_path / 'clipping'}",
    ]


def _train_on_two_cpu_ranks(
    extra: list[str], hub_dir, cache_dir, tmp_path, base: list[str] = TINY
) -> tuple[subprocess.CompletedProcess, Path]:
    """`train.py trainer.devices=2` on the tiny data, as a user would start it."""
    run_dir = tmp_path / "run"
    args = [
        *[a for a in base if not a.startswith("callbacks.")],
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        f"data.path={hub_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    # the ranks import the recording callback from this module
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONPATH": path},
    )
    return result, run_dir


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("extra", "clip"),
    [([], 0.5), (["model.tbptt_steps=4"], 0.05)],
    ids=["full_bptt", "tbptt_clipped"],
)
def test_two_process_ddp_on_cpu_learns_clips_and_writes_one_metrics_file(
    extra, clip, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches: each rank writing its own metrics.json; a model that learns nothing under DDP
    (test accuracy at chance, 0.5 on the balanced tiny task); clipping skipped under DDP,
    measured at each rank's optimizer, with gradients that needed it (their norm reaches about
    0.8 with full BPTT, 1.3 with truncated BPTT)."""
    result, run_dir = _train_on_two_cpu_ranks(
        [
            "model=gru",
            "model.optimizer.lr=0.03",
            "trainer.strategy=ddp",
            "trainer.max_epochs=4",
            f"trainer.gradient_clip_val={clip}",
            *extra,
            *_record_clipping(tmp_path),
        ],
        hub_dir,
        cache_dir,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics_files = list(tmp_path.rglob("metrics.json"))
    assert metrics_files == [run_dir / "metrics.json"]
    metrics = json.loads(metrics_files[0].read_text())
    records = _clipping_records(tmp_path)
    assert metrics["test/acc"] >= 0.7  # measured 0.82 with full BPTT (chance: 0.5)
    assert len(records) == 2 and all(r["steps"] > 0 for r in records)
    assert max(r["before"] for r in records) > clip  # the clipping had something to do
    assert max(r["after"] for r in records) <= clip * (1 + 1e-4)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("compile_chunk", ["null", "4"], ids=["eager", "compiled"])
def test_the_hand_written_elman_cell_trains_on_two_cpu_ranks_under_truncated_bptt(
    compile_chunk, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches a cell written outside torch's fused kernels breaking DDP, eager or compiled in
    chunks: its parameters must be all-reduced, each rank must run the same number of chunks,
    and the model's clipping must reach them on both ranks."""
    clip = 0.05
    result, run_dir = _train_on_two_cpu_ranks(
        [
            "model=elman",
            f"model.compile_chunk={compile_chunk}",
            "trainer.strategy=ddp",
            "trainer.max_epochs=1",
            "model.tbptt_steps=4",
            f"trainer.gradient_clip_val={clip}",
            *_record_clipping(tmp_path),
        ],
        hub_dir,
        cache_dir,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.rglob("metrics.json")) == [run_dir / "metrics.json"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "test/acc" in metrics and ("compile_graphs" in metrics) == (compile_chunk != "null")
    records = _clipping_records(tmp_path)
    assert len(records) == 2 and records[0]["steps"] == records[1]["steps"] > 0
    assert max(r["after"] for r in records) <= clip * (1 + 1e-4)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("strategy", "ok"), [("ddp_find_unused_parameters_true", True), ("ddp", False)]
)
def test_gradual_unfreezing_under_ddp_needs_find_unused_parameters(
    strategy, ok, hub_dir, cache_dir, tmp_path
) -> None:
    """Catches frozen layers under plain `ddp` hanging (DDP waits for their gradients) instead
    of the one-line refusal, and the refusal firing when find_unused_parameters is on."""
    result, run_dir = _train_on_two_cpu_ranks(
        [
            "model=lstm",
            "model.gradual_unfreezing=true",
            "model.lr_decay=2.6",
            f"trainer.strategy={strategy}",
            "trainer.max_epochs=3",
        ],
        hub_dir,
        cache_dir,
        tmp_path,
    )
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
        assert json.loads((run_dir / "metrics.json").read_text())["trainable_params"] > 0
    else:
        assert result.returncode == 2, result.stderr[-3000:]
        assert "use trainer.strategy=ddp_find_unused_parameters_true" in result.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_language_model_trains_on_two_cpu_ranks_with_clipping(
    precision, cache_dir, tmp_path
) -> None:
    """Four streams of ten tokens: a rank's batch often has no word of an adaptive-softmax
    cluster, and a rank without one must not leave the others waiting. Also catches: clipping
    skipped under DDP or under bf16-mixed (measured at each rank's optimizer, with gradients
    that needed it), and a model that learns nothing (the perplexity of uniform guessing is
    the vocabulary size, 27 here; the tiny streams are mostly 11 filler words drawn uniformly,
    so the best possible is above 11; two epochs reach about 17.5)."""
    result, run_dir = _train_on_two_cpu_ranks(
        [
            "trainer.strategy=ddp",
            "trainer.max_epochs=2",
            "trainer.gradient_clip_val=0.05",
            f"trainer.precision={precision}",
            *_record_clipping(tmp_path),
        ],
        write_lm_layout(tmp_path / "lm_imdb"),
        cache_dir,
        tmp_path,
        base=LM_TINY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    vocab_size = last["meta"]["vocab_size"]  # the tokenizer's, below data.vocab_size=100
    records = _clipping_records(tmp_path)
    assert 1 < metrics["val/ppl_best"] < 0.75 * vocab_size
    assert len(records) == 2 and all(r["steps"] > 0 for r in records)
    assert max(r["before"] for r in records) > 0.05  # the clipping had something to do
    assert max(r["after"] for r in records) <= 0.05 * (1 + 1e-4)
    assert "test/acc" not in metrics
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_ddp_preset_composes_for_two_nodes(tmp_path) -> None:
    from hydra.utils import instantiate

    from tests.conftest import compose_cfg

    cfg = compose_cfg(
        "train",
        ["trainer=ddp", "trainer.num_nodes=2", "trainer.accelerator=cpu"],
        tmp_path,
        tmp_path,
    )
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 2, 2)
    trainer = instantiate(cfg.trainer, logger=False, use_distributed_sampler=False)
    assert (trainer.num_nodes, trainer.world_size) == (2, 4)


def test_gpu_ddp_preset_composes_with_the_gpu_data_settings(tmp_path) -> None:
    """Two GPUs cannot be started here; the composed config is what can be checked."""
    from tests.conftest import compose_cfg

    for overrides in (["trainer=ddp", "trainer.accelerator=gpu"], ["trainer=gpu"]):
        cfg = compose_cfg("train", overrides, tmp_path, tmp_path)
        assert cfg.trainer.accelerator == "gpu"
    assert (cfg.trainer.precision, cfg.data.num_workers, cfg.data.pin_memory) == (
        "bf16-mixed",
        4,
        True,
    )
    ddp = compose_cfg("train", ["trainer=ddp", "trainer.accelerator=gpu"], tmp_path, tmp_path)
    assert (ddp.trainer.strategy, ddp.trainer.devices) == ("ddp", 2)
