"""Recurrent encoder on right-padded batches: padding never reaches a sequence's representation.

On CPU, packing costs LSTM ~8x and GRU ~4.5x of the padded throughput, so the padded batch is run
as is: a unidirectional network's outputs up to a sequence's end never see its padding, and the
reverse direction of a bidirectional network runs on each sequence reversed within its own length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = Tensor | tuple[Tensor, Tensor] | None

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# concat: [last, max, mean] side by side (ULMFiT's concat pooling), three times the features
POOLINGS = ("last", "mean", "max", "concat")
CONCAT_PARTS = ("last", "max", "mean")


def pooled_size(output_size: int, how: str) -> int:
    return output_size * (len(CONCAT_PARTS) if how == "concat" else 1)


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse x[b, :len_b] along time, leaving the padding in place (an involution)."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = (lengths.to(x.device) - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


@contextlib.contextmanager
def _cpu_recurrence_in_fp32(x: Tensor) -> Iterator[Tensor]:
    """Under CPU bf16 autocast, run the recurrent kernels in float32 (the rest stays mixed).

    oneDNN's bf16 RNN crashes on CPUs without AVX-512 ("could not create a primitive
    descriptor ..."), and ATen's bf16 fallback measured 6.3x slower than float32 here (LSTM,
    B32 T100 H128, one thread, interleaved in one process).
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            yield x.float()
    else:
        yield x


class RecurrentEncoder(nn.Module):
    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        kwargs = {"hidden_size": hidden_size, "batch_first": True}
        if cell == "rnn":
            kwargs["nonlinearity"] = nonlinearity
        self.bidirectional = bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)
        rnn = CELLS[cell]
        if bidirectional:
            sizes = [input_size] + [self.output_size] * (num_layers - 1)
            self.forward_layers = nn.ModuleList(rnn(size, **kwargs) for size in sizes)
            self.backward_layers = nn.ModuleList(rnn(size, **kwargs) for size in sizes)
            self.between = nn.Dropout(dropout)
        else:
            inner = dropout if num_layers > 1 else 0.0
            self.rnn = rnn(input_size, num_layers=num_layers, dropout=inner, **kwargs)

    @property
    def recurrent_modules(self) -> list[nn.RNNBase]:
        if self.bidirectional:
            return [*self.forward_layers, *self.backward_layers]
        return [self.rnn]

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, E) right-padded + lengths -> outputs (B, T, output_size); padded steps are junk."""
        with _cpu_recurrence_in_fp32(x) as x:
            if not self.bidirectional:
                return self.rnn(x)[0]
            for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
                if i:
                    x = self.between(x)
                back = reverse_within_length(bwd(reverse_within_length(x, lengths))[0], lengths)
                x = torch.cat([fwd(x)[0], back], dim=-1)
            return x

    def forward_chunk(self, x: Tensor, chunk_len: Tensor, state: State) -> tuple[Tensor, State]:
        """One truncated-BPTT chunk from `state`; rows whose sequence already ended keep theirs.

        A chunk where every row is full runs padded (fast); a chunk where some sequence ends
        runs packed, so each row's carried state is the one at its own last token.
        """
        with _cpu_recurrence_in_fp32(x) as x:
            if bool((chunk_len == x.size(1)).all()):
                outputs, new = self.rnn(x, state)
            else:
                steps = chunk_len.clamp(min=1).cpu()
                packed = pack_padded_sequence(x, steps, batch_first=True, enforce_sorted=False)
                outputs, new = self.rnn(packed, state)
                outputs = pad_packed_sequence(outputs, batch_first=True, total_length=x.size(1))[0]
        return outputs, _where_state(chunk_len == 0, state, new)


def _where_state(keep: Tensor, old: State, new: State) -> State:
    if old is None or not bool(keep.any()):
        return new
    mask = keep.view(1, -1, 1)
    if isinstance(new, tuple):
        return tuple(torch.where(mask, o, n) for o, n in zip(old, new))
    return torch.where(mask, old, new)


def detach_state(state: State) -> State:
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()


def pool(outputs: Tensor, lengths: Tensor, how: str, bidirectional: bool) -> Tensor:
    """Summarise each sequence from its valid steps only."""
    if how == "concat":
        return torch.cat([pool(outputs, lengths, part, bidirectional) for part in CONCAT_PARTS], -1)
    lengths = lengths.to(outputs.device)
    if how == "last":
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
        last = outputs.gather(1, index).squeeze(1)
        if not bidirectional:
            return last
        half = outputs.size(-1) // 2
        return torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)
    mask = (torch.arange(outputs.size(1), device=outputs.device) < lengths.unsqueeze(1)).unsqueeze(
        -1
    )
    if how == "mean":
        return (outputs * mask).sum(1) / lengths.unsqueeze(1).to(outputs.dtype)
    return outputs.masked_fill(~mask, torch.finfo(outputs.dtype).min).amax(1)


@dataclass
class RunningPool:
    """Pooling over a sequence that arrives in chunks (truncated BPTT)."""

    how: str
    value: Tensor | None = None
    count: Tensor | None = None
    parts: list[RunningPool] | None = None

    def __post_init__(self) -> None:
        if self.how == "concat":
            self.parts = [RunningPool(part) for part in CONCAT_PARTS]

    def update(self, outputs: Tensor, chunk_len: Tensor) -> Tensor:
        """Fold in a chunk's valid steps; rows with no valid step keep their value."""
        if self.parts is not None:
            return torch.cat([part.update(outputs, chunk_len) for part in self.parts], -1)
        chunk_len = chunk_len.to(outputs.device)
        active = (chunk_len > 0).unsqueeze(1)
        if self.how == "mean":
            mask = torch.arange(outputs.size(1), device=outputs.device) < chunk_len.unsqueeze(1)
            total = (outputs * mask.unsqueeze(-1)).sum(1)
            self.value = total if self.value is None else self.value + total
            self.count = chunk_len if self.count is None else self.count + chunk_len
            return self.value / self.count.clamp(min=1).unsqueeze(1).to(outputs.dtype)
        current = pool(outputs, chunk_len.clamp(min=1), self.how, bidirectional=False)
        if self.value is None:
            self.value = current
        elif self.how == "max":
            self.value = torch.where(active, torch.maximum(self.value, current), self.value)
        else:
            self.value = torch.where(active, current, self.value)
        return self.value

    def detach(self) -> None:
        for part in self.parts or ():
            part.detach()
        self.value = None if self.value is None else self.value.detach()
