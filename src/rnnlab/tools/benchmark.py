"""Throughput benchmark: where do a training step's tokens/s go?

Three loops run the same model on the same bucketed batches, interleaved per repeat so that a
noisy machine slows all of them alike: the project's Lightning loop, a hand-written PyTorch loop
(their ratio is Lightning's overhead) and the bare recurrent layer at the same (B, T) shapes
(the whole pipeline's overhead). Also: model FLOPs utilisation against a GEMM timed in the same
run, the padding share with and without length bucketing, cold preprocessing and the cached
restart time to the first training step. `python benchmarks/throughput.py --help`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
import yaml
from hydra import compose, initialize_config_dir
from lightning import Callback
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from rnnlab.data import BucketBatchSampler, TextClassificationDataModule
from rnnlab.data.dataset import EncodedTexts, pad_collate
from rnnlab.meta import DataMeta
from rnnlab.models import RNNClassifier
from rnnlab.models import build_model as build_from_config
from rnnlab.models.build import model_settings
from rnnlab.models.components import Encoder
from rnnlab.run.train import route_clipping
from rnnlab.utils import atomic_write_text

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"  # the checkout's, beside src/


def measurable_cells() -> list[str]:
    """The conf/model/ presets that name an encoder class (not variants of one, such as irnn)."""
    return sorted(
        p.stem
        for p in (CONF_DIR / "model").glob("*.yaml")
        if "_target_" in (yaml.safe_load(p.read_text()).get("encoder") or {})
    )


Batch = dict[str, Tensor]


@dataclass
class ThroughputRow:
    """Medians over repeats; ratios are medians of ratios taken within each repeat."""

    cell: str
    hidden: int
    lightning: float
    hand: float
    bare: float
    lightning_vs_hand: float
    lightning_vs_bare: float
    mfu: float | None  # None: torch counts no matmul in the cell (see counted_flops)
    compiled: float | None  # the bare layer via model.compile_chunk; None: nothing to compile
    compiled_vs_bare: float | None
    gemm_gflops: float


@dataclass
class PaddingRow:
    max_len: int
    bucketed: float
    unbucketed: float
    fixed: float


@dataclass
class Report:
    header: dict[str, str]
    throughput: list[ThroughputRow] = field(default_factory=list)
    padding: list[PaddingRow] = field(default_factory=list)
    startup: dict[str, float] = field(default_factory=dict)


def environment(device: torch.device) -> dict[str, str]:
    """What a reader needs to compare numbers across machines."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torch threads": str(torch.get_num_threads()),
        "CPU": f"{cpu} ({os.cpu_count()} logical cores)",
        "device": str(device),
    }
    if device.type == "cuda":
        info["GPU"] = torch.cuda.get_device_name(device)
    return info


def project_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The composed `train.yaml`, so the model, optimizer and clipping are the project's own."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def build_model(cfg: DictConfig, vocab_size: int, pad_id: int) -> RNNClassifier:
    meta = DataMeta(vocab_size, pad_id, tokenizer_json="", label_names=("neg", "pos"))
    return build_from_config(model_settings(cfg.model)[0], meta)


def build_encoder(cfg: DictConfig, embedding_dim: int, hidden: int) -> Encoder:
    """The configured cell alone, one layer, as the model builds it."""
    return hydra.utils.instantiate(cfg.model.encoder)(
        input_size=embedding_dim, hidden_size=hidden, num_layers=1
    )


def synthetic_reviews(n: int, vocab_size: int, max_len: int, seed: int = 0) -> EncodedTexts:
    """IMDB-like word-level lengths: log-normal, median ~210 tokens, mean ~280, long tail."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(210), 0.75, n), 10, 2500).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = rng.integers(2, vocab_size, offsets[-1], dtype=np.int32)
    return EncodedTexts(flat, offsets, rng.integers(0, 2, n), max_len, "head_tail")


def bucketed_loader(
    reviews: EncodedTexts, batch_size: int, pad_id: int, seed: int = 42
) -> DataLoader:
    """The data module's training loader for reviews that did not come from a data module."""
    return DataLoader(
        reviews,
        batch_sampler=BucketBatchSampler(reviews.lengths, batch_size, shuffle=True, seed=seed),
        collate_fn=lambda items: pad_collate(items, pad_id=pad_id),
    )


def take(loader: DataLoader, n: int) -> list[Batch]:
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == n:
            break
    return batches


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class _Stopwatch(Callback):
    """From the start of the first training batch to the end of the last: no Trainer start-up."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, i: int) -> None:
        if i == 0:
            self.start = _now(self.device)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        self.end = _now(self.device)


def lightning_seconds(
    model: RNNClassifier, batches: list[Batch], trainer_cfg: DictConfig, device: torch.device
) -> float:
    """The project's Lightning loop (its clipping and precision), timed by a callback."""
    stopwatch = _Stopwatch(device)
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=trainer_cfg.precision,
        **route_clipping(trainer_cfg, model),
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[stopwatch],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few batches, no workers, no logger: all intended here
        trainer.fit(model, train_dataloaders=DataLoader(batches, batch_size=None))
    return stopwatch.end - stopwatch.start


def hand_seconds(
    model: RNNClassifier, batches: list[Batch], clip: float | None, device: torch.device
) -> float:
    """Minimal PyTorch loop: same model, optimizer, scheduler and clipping, nothing else."""
    model.to(device).train()
    optimizer = model.optimizer_factory(params=model.parameters())
    scheduler = (
        model.scheduler_factory(optimizer=optimizer, total_steps=len(batches))
        if model.scheduler_factory
        else None
    )
    start = 0.0
    for i, batch in enumerate(DataLoader(batches, batch_size=None)):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if i == 0:
            start = _now(device)
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(model(batch["input_ids"], batch["lengths"]), batch["labels"])
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return _now(device) - start


def bare_layer_seconds(
    encoder: Encoder,
    embedding_dim: int,
    hidden: int,
    shapes: list[tuple[int, int]],
    device: torch.device,
) -> float:
    """Forward + backward of the recurrent layer alone (input gradient too, as under an embedding)."""
    rnn = encoder.to(device)
    inputs = [
        torch.randn(b, t, embedding_dim, device=device, requires_grad=True) for b, t in shapes
    ]
    grads = [torch.randn(b, t, hidden, device=device) for b, t in shapes]
    start = _now(device)
    for x, grad in zip(inputs, grads):
        lengths = torch.full((x.size(0),), x.size(1), device=device)
        rnn(x, lengths)[0].backward(grad)
    return _now(device) - start


def gemm_flops_per_s(size: int, device: torch.device, runs: int = 5) -> float:
    """Median FLOP/s of a square float32 matmul: the machine's practical peak in this process."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    a @ b  # noqa: B018 - warm-up
    times = []
    for _ in range(runs):
        start = _now(device)
        a @ b  # noqa: B018
        times.append(_now(device) - start)
    return 2 * size**3 / statistics.median(times)


def counted_flops(
    model: RNNClassifier, steps: tuple[int, int] = (4, 8), batch: int = 2
) -> tuple[float, float] | None:
    """Matmul FLOPs of one training step (forward + backward) of a CPU model as (per real
    token, per sequence), counted by torch's FlopCounterMode: any cell, no matrices reported.

    A step's FLOPs are affine in the length, so two unpadded batches of `steps` lengths give
    both terms. oneDNN is off while counting: its fused LSTM is one op the counter has no
    formula for (nn.RNN, nn.GRU and hand-written cells run as matmuls the counter sees). None
    when it sees no matmul in the encoder (a kernel it cannot look into, or no matmul at all).
    """
    totals, seen = [], []
    for length in steps:
        ids = torch.zeros(batch, length, dtype=torch.long)  # the ids do not change the FLOPs
        with (
            torch.backends.mkldnn.flags(enabled=False, allow_tf32=None),  # None: no TF32 warning
            FlopCounterMode(display=False) as counter,
        ):
            logits = model(ids, torch.full((batch,), length))
            model.loss(logits, torch.zeros(batch, dtype=torch.long)).backward()
        totals.append(counter.get_total_flops())
        seen.append(bool(counter.get_flop_counts().get(f"{type(model).__name__}.encoder")))
    model.zero_grad(set_to_none=True)
    if not all(seen):
        return None
    per_token = (totals[1] - totals[0]) / (batch * (steps[1] - steps[0]))
    return per_token, totals[0] / batch - per_token * steps[0]


def measure_throughput(
    cell: str,
    hidden: int,
    batches: list[Batch],
    vocab_size: int,
    pad_id: int,
    repeats: int = 5,
    warmup: int = 1,
    device: torch.device | None = None,
    gemm_size: int = 2048,
    overrides: Sequence[str] = (),
    compile_chunk: int = 32,
) -> ThroughputRow:
    """Interleave Lightning, hand-written, bare layer (eager, and compiled in chunks of
    `compile_chunk` steps for a hand-written cell) and GEMM per repeat; medians of each.

    Tokens are real (non-padding) tokens for all three loops, so the bare layer is credited
    with the batches' real tokens although it runs their padded shapes, like the model does.
    """
    device = device or torch.device("cpu")
    cfg = project_config([f"model={cell}", f"model.hidden_size={hidden}", *overrides])
    model = build_model(cfg, vocab_size, pad_id)
    embedding_dim = cfg.model.embedding_dim
    clip = cfg.trainer.gradient_clip_val
    shapes = [tuple(b["input_ids"].shape) for b in batches]
    tokens = int(sum(int(b["lengths"].sum()) for b in batches))
    counted = counted_flops(model)  # before a loop moves the model to the device
    sequences = sum(s[0] for s in shapes)
    flops = None if counted is None else counted[0] * tokens + counted[1] * sequences
    encoder = build_encoder(cfg, embedding_dim, hidden)
    compiled = build_encoder(cfg, embedding_dim, hidden)
    compiled.compile_recurrence(compile_chunk)  # a no-op for torch's fused cells
    compiles = getattr(compiled, "compile_chunk", None) is not None
    runs: dict[str, list[float]] = {
        k: [] for k in ("lightning", "hand", "bare", "compiled", "gemm")
    }
    for repeat in range(warmup + repeats):
        times = {
            "lightning": lightning_seconds(model, batches, cfg.trainer, device),
            "hand": hand_seconds(model, batches, clip, device),
            "bare": bare_layer_seconds(encoder, embedding_dim, hidden, shapes, device),
        }
        if compiles:  # the warm-up repeats pay the compiling
            times["compiled"] = bare_layer_seconds(compiled, embedding_dim, hidden, shapes, device)
        gemm = gemm_flops_per_s(gemm_size, device)
        if repeat >= warmup:
            for key, seconds in times.items():
                runs[key].append(tokens / seconds)
            runs["gemm"].append(gemm)
    pairs = list(zip(runs["lightning"], runs["hand"], runs["bare"], runs["gemm"]))
    compiled_ratios = [c / b for c, b in zip(runs["compiled"], runs["bare"])]
    mfus = [lt * flops / tokens / g for lt, _, _, g in pairs] if flops is not None else None
    return ThroughputRow(
        cell=cell,
        hidden=hidden,
        lightning=statistics.median(runs["lightning"]),
        hand=statistics.median(runs["hand"]),
        bare=statistics.median(runs["bare"]),
        lightning_vs_hand=statistics.median(lt / h for lt, h, _, _ in pairs),
        lightning_vs_bare=statistics.median(lt / b for lt, _, b, _ in pairs),
        mfu=None if mfus is None else statistics.median(mfus),
        compiled=statistics.median(runs["compiled"]) if compiles else None,
        compiled_vs_bare=statistics.median(compiled_ratios) if compiles else None,
        gemm_gflops=statistics.median(runs["gemm"]) / 1e9,
    )


def padding_shares(
    raw_lengths: np.ndarray, batch_size: int, max_lens: Sequence[int], seed: int = 42
) -> list[PaddingRow]:
    """Padded share of all tokens in one epoch: bucketed (the real sampler), per-batch padding
    of unsorted batches, and fixed-length padding to max_len."""
    rows = []
    for max_len in max_lens:
        lengths = np.clip(raw_lengths, 1, max_len)
        real = float(lengths.sum())

        def share(batches: list[np.ndarray], lengths: np.ndarray = lengths, real: float = real):
            padded = sum(len(b) * int(lengths[b].max()) for b in batches)
            return 1 - real / padded

        bucketed = BucketBatchSampler(lengths, batch_size, seed=seed).global_batches()
        order = np.random.default_rng(seed).permutation(len(lengths))
        unbucketed = np.split(order, range(batch_size, len(order), batch_size))
        fixed = 1 - real / (len(lengths) * max_len)
        rows.append(PaddingRow(max_len, share(bucketed), share(unbucketed), fixed))
    return rows


def _run_child(
    measure: str, env: dict[str, str] | None = None, **kwargs: Any
) -> tuple[float, dict]:
    """One of `benchmark_child`'s measures in a fresh interpreter: its launch time and its result."""
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "rnnlab.tools.benchmark_child", measure, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if done.returncode:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return launched, json.loads(done.stdout.strip().splitlines()[-1])


def cold_preprocessing_seconds(path: str, **data_kwargs: Any) -> float:
    """prepare_data() in a fresh process with empty project and `datasets` caches (imports excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HF_DATASETS_CACHE": f"{tmp}/hf"}
        _, result = _run_child(
            "cold_preprocessing", env, path=path, cache_dir=f"{tmp}/cache", data_kwargs=data_kwargs
        )
        return result["seconds"]


def cached_restart(
    data_kwargs: dict[str, Any], overrides: Sequence[str] = (), runs: int = 3
) -> dict[str, float]:
    """Medians, from launching a fresh interpreter: imports, data from the warm cache, then model
    + Trainer start-up + one training step. The cache must exist (call prepare_data first)."""
    parts: dict[str, list[float]] = {"imports": [], "data": [], "first step": [], "total": []}
    for _ in range(runs):
        launched, stamps = _run_child(
            "first_step", data_kwargs=data_kwargs, overrides=list(overrides)
        )
        parts["imports"].append(stamps["imported"] - launched)
        parts["data"].append(stamps["data"] - stamps["imported"])
        parts["first step"].append(stamps["first_step"] - stamps["data"])
        parts["total"].append(stamps["first_step"] - launched)
    return {k: statistics.median(v) for k, v in parts.items()}


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def throughput_table(rows: list[ThroughputRow]) -> tuple[list[str], list[list[str]]]:
    columns = [
        "cell",
        "hidden",
        "Lightning",
        "hand loop",
        "Lightning / hand",
        "bare layer",
        "pipeline / bare",
        "bare, compiled",
        "compiled / bare",
        "MFU",
        "GEMM GFLOP/s",
    ]
    body = [
        [
            r.cell,
            str(r.hidden),
            _fmt_rate(r.lightning),
            _fmt_rate(r.hand),
            f"{r.lightning_vs_hand:.3f}",
            _fmt_rate(r.bare),
            f"{r.lightning_vs_bare:.3f}",
            "—" if r.compiled is None else _fmt_rate(r.compiled),
            "—" if r.compiled_vs_bare is None else f"{r.compiled_vs_bare:.2f}",
            "—" if r.mfu is None else f"{100 * r.mfu:.1f}%",
            f"{r.gemm_gflops:.1f}",
        ]
        for r in rows
    ]
    return columns, body


def padding_table(rows: list[PaddingRow]) -> tuple[list[str], list[list[str]]]:
    columns = ["max_len", "bucketed", "per-batch, unsorted", "fixed-length"]
    body = [
        [str(r.max_len), *(f"{100 * s:.1f}%" for s in (r.bucketed, r.unbucketed, r.fixed))]
        for r in rows
    ]
    return columns, body


def startup_table(startup: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    labels = {
        "cold": "cold preprocessing (tokenizer training + encoding, fresh caches)",
        "total": "cached restart to first training step",
        "imports": "  of which: interpreter + imports",
        "data": "  of which: data module from the warm cache",
        "first step": "  of which: model, Trainer start-up, first step",
    }
    return ["", "seconds"], [[labels[k], f"{startup[k]:.2f}"] for k in labels if k in startup]


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    if report.throughput:
        out.append(
            (
                "Training tokens/s (real tokens; ratios within a repeat)",
                *throughput_table(report.throughput),
            )
        )
    if report.padding:
        out.append(("Padded share of tokens per epoch", *padding_table(report.padding)))
    if report.startup:
        out.append(("Start-up", *startup_table(report.startup)))
    return out


def to_markdown(report: Report) -> str:
    lines = ["# Throughput benchmark", ""]
    lines += [f"- {k}: {v}" for k, v in report.header.items()]
    for title, columns, body in tables(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    for key, value in report.header.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)
    for title, columns, body in tables(report):
        table = Table(title=title)
        for i, column in enumerate(columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in body:
            table.add_row(*row)
        console.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], choices=measurable_cells())
    p.add_argument("--hidden", nargs="+", type=int, default=[128, 256])
    p.add_argument("--batches", type=int, default=20, help="training batches per loop and repeat")
    p.add_argument("--repeats", type=int, default=5, help="measured repeats (medians)")
    p.add_argument("--warmup", type=int, default=1, help="discarded repeats first")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-len", type=int, default=400)
    p.add_argument("--padding-max-len", nargs="+", type=int, default=[200, 400])
    p.add_argument("--data", default=os.environ.get("IMDB_DIR"), help="IMDB folder; else synthetic")
    p.add_argument("--cache-dir", default=os.environ.get("RNNLAB_CACHE", ".cache"))
    p.add_argument("--preprocessing", action="store_true", help="also time cold preprocessing")
    p.add_argument("--restarts", type=int, default=3, help="cached restarts to time (0: skip)")
    p.add_argument("--gemm-size", type=int, default=2048)
    p.add_argument(
        "--compile-chunk", type=int, default=16, help="steps per compiled call (hand-written cells)"
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for the model")
    p.add_argument("--out", type=Path, help="write the tables as Markdown here")
    return p.parse_args(argv)


def run(args: argparse.Namespace, progress: Callable[[str], None] = print) -> Report:
    device = torch.device(args.device)
    header = environment(device)
    data_kwargs = {"max_len": args.max_len, "batch_size": args.batch_size}
    if args.data:
        data_kwargs |= {"path": args.data, "cache_dir": args.cache_dir}
        datamodule = TextClassificationDataModule(**data_kwargs)
        datamodule.prepare_data()
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        vocab_size, pad_id = datamodule.vocab_size, datamodule.pad_id
        raw_lengths = np.diff(datamodule.splits["train"].offsets)
        header["data"] = f"IMDB train split at {args.data}"
    else:
        vocab_size, pad_id = 20000, 0
        reviews = synthetic_reviews(22500, vocab_size, args.max_len)
        loader = bucketed_loader(reviews, args.batch_size, pad_id)
        raw_lengths = np.diff(reviews.offsets)
        header["data"] = "synthetic reviews with IMDB-like lengths (pass --data for the real ones)"
    batches = take(loader, args.batches)
    real = sum(int(b["lengths"].sum()) for b in batches)
    padded = sum(b["input_ids"].numel() for b in batches)
    header["batches"] = (
        f"the same {len(batches)} bucketed training batches of {args.batch_size} (max_len "
        f"{args.max_len}, {100 * (1 - real / padded):.1f}% padding) in all three loops"
    )
    header["method"] = (
        f"{args.repeats} repeats after {args.warmup} warm-up, loops interleaved per repeat; "
        "medians, ratios are medians of per-repeat ratios; Lightning timed from the first "
        "batch's start to the last batch's end (Trainer start-up excluded); MFU = the model's "
        "matmul FLOPs per real token and sequence (forward + backward, counted by torch's "
        "FlopCounterMode; — where it sees no matmul in the cell) at the Lightning loop's rate "
        f"over a {args.gemm_size}^2 float32 GEMM's FLOP/s; 'bare, compiled': the bare layer with "
        f"model.compile_chunk={args.compile_chunk} (hand-written cells; the warm-up compiles)"
    )
    report = Report(header)
    for cell in args.cells:
        for hidden in args.hidden:
            progress(f"measuring {cell} hidden {hidden}")
            report.throughput.append(
                measure_throughput(
                    cell,
                    hidden,
                    batches,
                    vocab_size,
                    pad_id,
                    repeats=args.repeats,
                    warmup=args.warmup,
                    device=device,
                    gemm_size=args.gemm_size,
                    overrides=args.override,
                    compile_chunk=args.compile_chunk,
                )
            )
    report.padding = padding_shares(raw_lengths, args.batch_size, args.padding_max_len)
    if args.data and args.preprocessing:
        progress("timing cold preprocessing")
        report.startup["cold"] = cold_preprocessing_seconds(args.data)
    if args.data and args.restarts:
        progress("timing cached restarts")
        report.startup |= cached_restart(data_kwargs, args.override, args.restarts)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 130)  # pipes: no squeezed columns
    report = run(args, progress=lambda msg: console.print(f"[dim]{msg}[/]"))
    print_report(report, console)
    if args.out:
        atomic_write_text(args.out, to_markdown(report))
        console.print(f"written: {args.out}")
    return 0
