"""The encoder interface every recurrent cell meets, and nn.RNN / nn.LSTM / nn.GRU behind it.

An encoder reads right-padded inputs (B, T, E) with their lengths and an optional carried state,
and returns the outputs (B, T, output_size) and the state after step T. Everything else in
rnnlab (truncated BPTT, the language model, fine-tuning from it, discriminative learning rates,
the gradient-flow callback, the benchmark) uses only `forward`, `output_size` and
`layer_groups`; `recurrent_weights()` is optional and only the initialisations that set
recurrent matrices (`model/init=orthogonal|identity`) need it.

Padding never reaches a sequence's own outputs: a unidirectional layer's outputs up to a
sequence's end never see its padding, and the reverse direction of a bidirectional encoder runs
on each sequence reversed within its own length. The padded batch is run as is, because
`pack_padded_sequence` costs 2.5-8x of the padded throughput on CPU.
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from rnnlab.models.components.compiled import run_in_chunks
from rnnlab.models.components.init import RecurrentWeights
from rnnlab.utils.errors import ConfigError, check, check_choice

# a layer's state (h, or (h, c) for an LSTM); an encoder's state: one per layer
State = Tensor | tuple | None
NONLINEARITIES = ("tanh", "relu")


class Encoder(nn.Module, ABC):
    """The interface. `output_size` sizes the read-out; `bidirectional` tells it where each
    direction's last step lies."""

    output_size: int
    bidirectional: bool

    @abstractmethod
    def forward(self, x: Tensor, lengths: Tensor, state: State = None) -> tuple[Tensor, State]:
        """(B, T, E) right-padded + lengths (B,) [+ the state to continue from] -> outputs
        (B, T, output_size) and the state after step T. Outputs at padded steps are junk; so is
        the state of a row shorter than T (truncated BPTT never reads either)."""

    @abstractmethod
    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters by depth, bottom to top: discriminative learning rates and gradual
        unfreezing treat each group as one layer."""

    def recurrent_weights(self) -> list[RecurrentWeights]:
        """Optional: every recurrent layer's (gates * H, H) matrices, for the initialisations
        that set them. A cell whose recurrence is not such a matrix reports none."""
        return []

    def compile_recurrence(self, chunk: int) -> None:
        """`model.compile_chunk`: a StackedEncoder compiles its layers' recurrence in chunks; an
        encoder of another shape compiles itself here, or refuses."""
        raise ConfigError(
            f"model.compile_chunk={chunk}: {type(self).__name__} has no compiled path "
            "(a StackedEncoder compiles its layers; another encoder overrides compile_recurrence)"
        )

    def initialise(self, init: Callable[[Encoder], None]) -> None:
        """Apply `model.init` (a component of rnnlab.models.components.init); a cell with
        settings of its own on top (an LSTM's forget bias) extends this."""
        init(self)


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse x[b, :len_b] along time, leaving the padding in place (an involution)."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = (lengths.to(x.device) - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


@contextlib.contextmanager
def cpu_recurrence_in_fp32(x: Tensor) -> Iterator[Tensor]:
    """Under CPU bf16 autocast, run the recurrence in float32 (the rest stays mixed).

    oneDNN's bf16 RNN crashes on CPUs without AVX-512 ("could not create a primitive
    descriptor ..."), and ATen's bf16 fallback measured 6.3x slower than float32 here.
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            yield x.float()
    else:
        yield x


class StackedEncoder(Encoder):
    """Layers of one direction each, stacked, with dropout between them. `make_layer(input_size,
    hidden_size)` builds a layer called as `layer(x, state) -> (outputs, state)` on (B, T, ·)
    inputs, as nn.RNN(batch_first=True) is. A bidirectional encoder gives every depth a second
    layer that reads each sequence backwards; its state is not carried (truncated BPTT and the
    language model read left to right)."""

    def __init__(
        self,
        make_layer: Callable[[int, int], nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for key, value in (("hidden_size", hidden_size), ("num_layers", num_layers)):
            check(isinstance(value, int) and value >= 1, f"model.{key}", value, "an integer >= 1")
        check(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
        self.bidirectional = bidirectional
        self.output_size = hidden_size * (2 if bidirectional else 1)
        sizes = [input_size] + [self.output_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(make_layer(size, hidden_size) for size in sizes)
        self.backward_layers = (
            nn.ModuleList(make_layer(size, hidden_size) for size in sizes)
            if bidirectional
            else None
        )
        self.between = nn.Dropout(dropout)
        self.compile_chunk: int | None = None

    def compile_recurrence(self, chunk: int) -> None:
        """Run every layer `chunk` steps at a time through torch.compile (`model.compile_chunk`;
        rnnlab.models.components.compiled): the same maths, at a fraction of the Python loop's
        overhead, for a cell whose file says nothing about compiling."""
        self.compile_chunk = chunk

    def run_layer(self, layer: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.compile_chunk is None:
            return layer(x, state)
        return run_in_chunks(layer, x, state, self.compile_chunk)

    def forward(self, x: Tensor, lengths: Tensor, state: State = None) -> tuple[Tensor, State]:
        states = state if state is not None else (None,) * len(self.forward_layers)
        new_states = []
        with cpu_recurrence_in_fp32(x) as x:
            for depth, layer in enumerate(self.forward_layers):
                if depth:
                    x = self.between(x)
                outputs, layer_state = self.run_layer(layer, x, states[depth])
                if self.backward_layers is not None:
                    backward = self.backward_layers[depth]
                    reversed_x = reverse_within_length(x, lengths)
                    reversed_outputs = self.run_layer(backward, reversed_x, None)[0]
                    outputs = torch.cat(
                        [outputs, reverse_within_length(reversed_outputs, lengths)], dim=-1
                    )
                new_states.append(layer_state)
                x = outputs
        return x, tuple(new_states)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """One group per depth, both directions in it."""
        groups = [list(layer.parameters()) for layer in self.forward_layers]
        for group, layer in zip(groups, self.backward_layers or ()):
            group.extend(layer.parameters())
        return groups

    def recurrent_weights(self) -> list[RecurrentWeights]:
        layers = [*self.forward_layers, *(self.backward_layers or ())]
        weights = [self.layer_weights(layer) for layer in layers]
        return [] if None in weights else weights

    def layer_weights(self, layer: nn.Module) -> RecurrentWeights | None:
        """Optional: one layer's matrices, by the names its own class gives them (None: the
        cell reports none)."""
        return None


class TorchRNNEncoder(StackedEncoder):
    """PyTorch's fused kernels (cuDNN on a GPU, oneDNN on a CPU), one layer per depth; a subclass
    names the module (`rnn`), and keyword arguments beyond the sizes go to it."""

    rnn: type[nn.RNNBase]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        **rnn_kwargs: object,
    ) -> None:
        layer = functools.partial(self.rnn, batch_first=True, **rnn_kwargs)
        super().__init__(layer, input_size, hidden_size, num_layers, bidirectional, dropout)

    def compile_recurrence(self, chunk: int) -> None:
        """Nothing to compile: the recurrence runs in torch's fused kernel (and Dynamo stops at
        nn.RNN / nn.LSTM / nn.GRU)."""

    def layer_weights(self, layer: nn.Module) -> RecurrentWeights:
        return RecurrentWeights(
            layer.weight_hh_l0, layer.weight_ih_l0, [layer.bias_ih_l0, layer.bias_hh_l0]
        )


class RNNEncoder(TorchRNNEncoder):
    """nn.RNN: h_t = f(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh). `nonlinearity=relu` with
    `model/init=identity` is the IRNN (Le et al. 2015)."""

    rnn = nn.RNN

    def __init__(self, *args: object, nonlinearity: str = "tanh", **kwargs: object) -> None:
        check_choice("model.encoder.nonlinearity", nonlinearity, NONLINEARITIES)
        super().__init__(*args, nonlinearity=nonlinearity, **kwargs)


class GRUEncoder(TorchRNNEncoder):
    rnn = nn.GRU


class LSTMEncoder(TorchRNNEncoder):
    """`forget_bias`: start the forget gate open (Jozefowicz et al. 2015 use 1.0)."""

    rnn = nn.LSTM

    def __init__(self, *args: object, forget_bias: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.forget_bias = forget_bias
        self._set_forget_bias()

    def initialise(self, init: Callable[[Encoder], None]) -> None:
        super().initialise(init)
        self._set_forget_bias()  # `identity` zeroes the biases

    def _set_forget_bias(self) -> None:
        """Gate order i, f, g, o; bias_ih + bias_hh add up, so the value is split across both."""
        if self.forget_bias is None:
            return
        with torch.no_grad():
            for weights in self.recurrent_weights():
                hidden = weights.hidden_size
                for bias in weights.biases:
                    bias[hidden : 2 * hidden] = self.forget_bias / 2


def detach_state(state: State) -> State:
    """Cut the graph behind a carried state, whatever its nesting (layers, (h, c))."""
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    return None if state is None else state.detach()
