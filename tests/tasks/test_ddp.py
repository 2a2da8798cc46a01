"""Two CPU processes (gloo) launched the way `python train.py trainer.devices=2` launches them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY
from tests.lm_helpers import LM_TINY, write_lm_layout

pytestmark = pytest.mark.slow


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
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    return result, run_dir


@pytest.mark.parametrize(
    "extra",
    [[], ["model.tbptt_steps=4", "trainer.gradient_clip_val=0.5"]],
    ids=["full_bptt", "tbptt_clipped"],
)
def test_two_process_ddp_on_cpu_completes_and_writes_one_metrics_file(
    extra, hub_dir, cache_dir, tmp_path
) -> None:
    result, run_dir = _train_on_two_cpu_ranks(
        ["model=gru", "trainer.strategy=ddp", "trainer.max_epochs=2", *extra],
        hub_dir,
        cache_dir,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics_files = list(tmp_path.rglob("metrics.json"))
    assert metrics_files == [run_dir / "metrics.json"]
    metrics = json.loads(metrics_files[0].read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("strategy", "ok"), [("ddp_find_unused_parameters_true", True), ("ddp", False)]
)
def test_gradual_unfreezing_under_ddp_needs_find_unused_parameters(
    strategy, ok, hub_dir, cache_dir, tmp_path
) -> None:
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


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_language_model_trains_on_two_cpu_ranks_with_clipping(
    precision, cache_dir, tmp_path
) -> None:
    """Four streams of ten tokens: a rank's batch often has no word of an adaptive-softmax
    cluster, which used to leave the ranks waiting on each other."""
    result, run_dir = _train_on_two_cpu_ranks(
        [
            "trainer.strategy=ddp",
            "trainer.max_epochs=2",
            "trainer.gradient_clip_val=0.5",
            f"trainer.precision={precision}",
        ],
        write_lm_layout(tmp_path / "lm_imdb"),
        cache_dir,
        tmp_path,
        base=LM_TINY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 1 < metrics["val/ppl_best"] < 100  # vocab_size=100: better than uniform
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
