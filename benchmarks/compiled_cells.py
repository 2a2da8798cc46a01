"""Forward + backward of one recurrent layer: torch's kernels, hand-written cells eager, and the
same cells through `model.compile_chunk` (rnnlab.models.components.compiled).

    OMP_NUM_THREADS=1 python benchmarks/compiled_cells.py [--chunk 16] [--repeats 7]

The cells: nn.RNN and nn.GRU, rnnlab's `elman`, and the minimal gated unit of the extension
kit (tests/extension_kit/mgu.py), a file that says nothing about compiling. Every repeat times
each variant once, in turn; the table gives medians and each time over nn.RNN's or nn.GRU's.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from rnnlab.models.components.compiled import compile_stats
from rnnlab.models.components.elman import ElmanEncoder
from rnnlab.models.components.encoder import GRUEncoder, RNNEncoder

KIT = Path(__file__).resolve().parents[1] / "tests" / "extension_kit" / "mgu.py"


def brought_cell() -> type[nn.Module]:
    """The extension kit's MGU encoder, loaded from its file as a researcher's module is."""
    spec = importlib.util.spec_from_file_location("mgu", KIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MGUEncoder


def seconds(encoder: nn.Module, x: torch.Tensor) -> float:
    lengths = torch.full((x.size(0),), x.size(1))
    start = time.perf_counter()
    encoder(x, lengths)[0].sum().backward()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--size", type=int, default=128, help="input and hidden size")
    p.add_argument("--chunk", type=int, default=16)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.manual_seed(0)
    size = args.size
    x = torch.randn(args.batch, args.steps, size, requires_grad=True)
    make: dict[str, Callable[[], nn.Module]] = {
        "nn.RNN": lambda: RNNEncoder(size, size),
        "nn.GRU": lambda: GRUEncoder(size, size),
        "elman": lambda: ElmanEncoder(size, size),
        "mgu (brought)": lambda: brought_cell()(size, size),
    }
    variants = {}
    for name, build in make.items():
        variants[name] = build()
        if name[:3] != "nn.":
            compiled = build()
            compiled.compile_recurrence(args.chunk)
            start = time.perf_counter()
            seconds(compiled, x)  # the first call compiles
            print(f"{name}: compiled in {time.perf_counter() - start:.1f} s")
            variants[f"{name}, compiled"] = compiled
    for encoder in variants.values():
        seconds(encoder, x)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, encoder in variants.items():
            times[name].append(seconds(encoder, x))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"\nB={args.batch}, T={args.steps}, E=H={size}, {torch.get_num_threads()} thread(s), "
        f"chunk {args.chunk}, {args.repeats} repeats; {compile_stats()}\n"
    )
    print("| layer | fwd+bwd ms | / nn.RNN | / nn.GRU |\n|---|--:|--:|--:|")
    for name, median in medians.items():
        rnn, gru = median / medians["nn.RNN"], median / medians["nn.GRU"]
        print(f"| {name} | {1000 * median:.1f} | {rnn:.2f}x | {gru:.2f}x |")


if __name__ == "__main__":
    main()
