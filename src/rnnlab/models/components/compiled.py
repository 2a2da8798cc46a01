"""A hand-written recurrence at library speed: torch.compile over fixed-size chunks of steps.

Compiling a layer's whole Python time loop unrolls it: compile time grows with the length and
every new batch length compiles again. Compiling one step gains nothing (the per-step overhead
stays). A chunk of `chunk` steps is the middle way: one compiled graph serves every sequence
length, since a sequence is read as its first step, then whole chunks, then the few steps
left, with the state carried between the calls (the contract truncated BPTT relies on too).

The first step runs eagerly when no state is given, so the compiled graph always receives a
state (a cell decides what "no state" means itself); the last (T - 1) mod chunk steps run
eagerly too. Sizes are symbolic (`dynamic=True`), so one graph serves every batch size; what
still tells graphs apart is the input width (the first layer reads the embedding, the others
the layer below) and the grad mode (training or evaluation): a cell compiles at most four,
under Dynamo's default limit of eight per function.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn


@functools.cache
def compiled_forward(cell: type[nn.Module]) -> Any:
    """The layer class's own forward, compiled once per class, so that each cell has its own
    graphs and recompile limit (made on first use: importing Dynamo takes a while)."""
    return torch.compile(cell.forward, dynamic=True)


def run_in_chunks(layer: nn.Module, x: Tensor, state: Any, chunk: int) -> tuple[Tensor, Any]:
    """`layer(x, state)` computed `chunk` steps at a time through one compiled graph."""
    outputs, start = [], 0
    if state is None:
        first, state = layer(x[:, :1], None)
        outputs.append(first)
        start = 1
    whole = (x.size(1) - start) // chunk * chunk
    for t in range(start, start + whole, chunk):
        piece = x[:, t : t + chunk].contiguous()  # a copy at offset 0: one graph for every t
        out, state = compiled_forward(type(layer))(layer, piece, state)
        outputs.append(out)
    if start + whole < x.size(1):
        out, state = layer(x[:, start + whole :], state)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


def compile_stats() -> dict[str, float]:
    """What compiling cost this process so far: the graphs built and the seconds spent."""
    from torch._dynamo.utils import calculate_time_spent, counters

    return {
        "compile_graphs": counters["stats"]["unique_graphs"],
        "compile_s": round(calculate_time_spent()["total_wall_time"], 1),
    }
