"""Forward + backward of one layer of each scan cell (minGRU, minLSTM, LRU) in its parallel and
its sequential mode, beside IndRNN and nn.GRU, at several lengths, then the log-space scan's two
scans over time (logcumsumexp, cumsum) alone; medians, one process.

    OMP_NUM_THREADS=1 python benchmarks/scan_cells.py [--lengths 256 1024 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import GRUEncoder
from rnnlab.models.components.indrnn import IndRNNEncoder
from rnnlab.models.components.lru import LRUEncoder
from rnnlab.models.components.mingru import MinGRUEncoder
from rnnlab.models.components.minlstm import MinLSTMEncoder

SCAN_CELLS = {"mingru": MinGRUEncoder, "minlstm": MinLSTMEncoder, "lru": LRUEncoder}


def milliseconds(forward: Callable[[Tensor], Tensor], x: Tensor, repeats: int) -> float:
    """Median time of forward(x).sum().backward() after one warm-up."""
    times = []
    for _ in range(repeats + 1):
        leaf = x.detach().requires_grad_()
        start = time.perf_counter()
        forward(leaf).sum().backward()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])


def layer_milliseconds(encoder: nn.Module, x: Tensor, repeats: int) -> float:
    """The same for an encoder's outputs over the full-length batch."""
    lengths = torch.full((x.size(0),), x.size(1))
    return milliseconds(lambda v: encoder(v, lengths)[0], x, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=128, help="input and hidden size")
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    size = args.size
    print(
        f"B={args.batch}, E=H={size}, {torch.get_num_threads()} thread(s), median of {args.repeats}"
    )
    print("\n| T | cell | parallel ms | sequential ms | parallel / sequential | nn.GRU ms |")
    print("|--:|---|--:|--:|--:|--:|")
    for steps in args.lengths:
        torch.manual_seed(0)
        x = torch.randn(args.batch, steps, size)
        gru = layer_milliseconds(GRUEncoder(size, size), x, args.repeats)
        for name, cell in SCAN_CELLS.items():
            parallel = layer_milliseconds(cell(size, size, mode="parallel"), x, args.repeats)
            sequential = layer_milliseconds(cell(size, size, mode="sequential"), x, args.repeats)
            ratio = parallel / sequential
            print(
                f"| {steps} | {name} | {parallel:.0f} | {sequential:.0f} | {ratio:.2f} | {gru:.0f} |"
            )
        indrnn = layer_milliseconds(IndRNNEncoder(size, size), x, args.repeats)
        print(f"| {steps} | indrnn | | {indrnn:.0f} | | {gru:.0f} |")
    # where the log-space scan's time goes: its two scans over (B, T, H), alone
    print("\n| T | torch.logcumsumexp ms | torch.cumsum ms |")
    print("|--:|--:|--:|")
    for steps in args.lengths:
        x = torch.randn(args.batch, steps, size)
        lcse = milliseconds(lambda v: torch.logcumsumexp(v, dim=1), x, args.repeats)
        cumsum = milliseconds(lambda v: v.cumsum(dim=1), x, args.repeats)
        print(f"| {steps} | {lcse:.0f} | {cumsum:.0f} |")


if __name__ == "__main__":
    main()
