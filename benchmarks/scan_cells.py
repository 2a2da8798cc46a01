"""Forward + backward of one layer of each scan cell (minGRU, minLSTM, LRU) in each of its modes
(parallel, blocked, sequential), beside IndRNN and nn.GRU, at several lengths and batch sizes;
then the layer with its recurrence taken out, which bounds what any scan can save (that rest is
the same in every mode), and the log-space scan's two scans over time (logcumsumexp, cumsum)
alone. Medians, one process.

    OMP_NUM_THREADS=1 python benchmarks/scan_cells.py [--lengths 256 1024 4096] [--batches 1 16]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch
from torch import Tensor, nn

from rnnlab.models.components.encoder import GRUEncoder
from rnnlab.models.components.indrnn import IndRNNEncoder
from rnnlab.models.components.lru import LRUEncoder
from rnnlab.models.components.mingru import MinGRUEncoder
from rnnlab.models.components.minlstm import MinLSTMEncoder
from rnnlab.models.components.scan import MODES

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


def no_recurrence(mode: str, a: Tensor, b: Tensor, h0: Tensor | None, block_size: int) -> Tensor:
    """h_t = a_t + b_t: one elementwise step in place of the recurrence, a and b still used."""
    return a + b


def rest_milliseconds(cell: type[nn.Module], x: Tensor, repeats: int) -> float:
    """The layer with its recurrence taken out: what every mode spends besides the scan."""
    with mock.patch.object(inspect.getmodule(cell), "linear_scan", no_recurrence):
        return layer_milliseconds(cell(x.size(2), x.size(2), mode="sequential"), x, repeats)


def speed_up(sequential: float, other: float) -> str:
    return f"{sequential / other:.2f}" if other > 0 else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument("--size", type=int, default=128, help="input and hidden size")
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    size, repeats = args.size, args.repeats
    print(f"E=H={size}, {torch.get_num_threads()} thread(s), median of {repeats}")
    # bound: the speed-up of a scan that took no time at all, sequential / rest
    print(
        "\n| B | T | cell | parallel ms | blocked ms | sequential ms | speed-up parallel "
        "| speed-up blocked | rest ms | bound | nn.GRU ms |"
    )
    print("|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for batch in args.batches:
        for steps in args.lengths:
            torch.manual_seed(0)
            x = torch.randn(batch, steps, size)
            gru = layer_milliseconds(GRUEncoder(size, size), x, repeats)
            for name, cell in SCAN_CELLS.items():
                ms = {m: layer_milliseconds(cell(size, size, mode=m), x, repeats) for m in MODES}
                seq, rest = ms["sequential"], rest_milliseconds(cell, x, repeats)
                print(
                    f"| {batch} | {steps} | {name} | {ms['parallel']:.0f} | {ms['blocked']:.0f} "
                    f"| {seq:.0f} | {speed_up(seq, ms['parallel'])} "
                    f"| {speed_up(seq, ms['blocked'])} | {rest:.0f} "
                    f"| {speed_up(seq, rest)} | {gru:.0f} |"
                )
            indrnn = layer_milliseconds(IndRNNEncoder(size, size), x, repeats)
            print(f"| {batch} | {steps} | indrnn | | | {indrnn:.0f} | | | | | {gru:.0f} |")
    # where the log-space scan's time goes: its two scans over (B, T, H), alone
    print("\n| B | T | torch.logcumsumexp ms | torch.cumsum ms |")
    print("|--:|--:|--:|--:|")
    for batch in args.batches:
        for steps in args.lengths:
            x = torch.randn(batch, steps, size)
            lcse = milliseconds(lambda v: torch.logcumsumexp(v, dim=1), x, repeats)
            cumsum = milliseconds(lambda v: v.cumsum(dim=1), x, repeats)
            print(f"| {batch} | {steps} | {lcse:.0f} | {cumsum:.0f} |")


if __name__ == "__main__":
    main()
