"""Models built as train.py builds them: composed from conf/, sized by a DataMeta."""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import Tensor, nn

from rnnlab.meta import DataMeta
from rnnlab.models import RecurrentModule, RNNClassifier, RNNLanguageModel, build_model, components
from rnnlab.models.build import model_settings
from rnnlab.models.components import Task
from tests.conftest import CONF

# the registries: every shipped cell, read-out and task is a YAML file or a Task class
_MODEL_PRESETS = {p.stem: OmegaConf.load(p) for p in (CONF / "model").glob("*.yaml")}
# a cell names its encoder class; a variant sets up a cell of another preset (irnn: rnn)
ENCODERS = sorted(n for n, c in _MODEL_PRESETS.items() if "_target_" in c.get("encoder", {}))
VARIANTS = sorted(
    n
    for n, c in _MODEL_PRESETS.items()
    if n not in ENCODERS and set(c.get("defaults", [])) & set(ENCODERS)
)


def options(group: str) -> list[str]:
    """The options of a config group, as files in conf/ (e.g. "model/init")."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


INITS = options("model/init")
DECODERS = options("model/decoder")
TBPTT_LOSSES = options("model/tbptt_loss")


def _readout_class(name: str) -> type:
    return get_class(OmegaConf.load(CONF / "model" / "readout" / f"{name}.yaml")._target_)


_ALL_READOUTS = sorted(p.stem for p in (CONF / "model" / "readout").glob("*.yaml"))
# one vector per sequence (what a classifier reads) | one per step (per-step tasks)
READOUTS = [name for name in _ALL_READOUTS if not _readout_class(name).per_step]
STEP_READOUTS = [name for name in _ALL_READOUTS if _readout_class(name).per_step]
# every concrete task component the package exports
TASKS = sorted(
    (
        cls
        for cls in vars(components).values()
        if isinstance(cls, type) and issubclass(cls, Task) and not inspect.isabstract(cls)
    ),
    key=lambda cls: cls.__name__,
)
BINARY = DataMeta(vocab_size=60, pad_id=0, tokenizer_json="{}", label_names=("neg", "pos"))


def _reports_matrices(cell: str) -> bool:
    """Whether the cell reports recurrent matrices (optional), which orthogonal/identity set."""
    return bool(classifier(cell).encoder.recurrent_weights())


def model_config(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return model_settings(cfg.model)[0]


def make_model(overrides: list[str], meta: DataMeta = BINARY) -> RecurrentModule:
    """e.g. make_model(["model=gru", "model.hidden_size=8"])."""
    return build_model(model_config(overrides), meta)


# -- helpers added for the model tests --------------------------------------------------------

TINY = ["model.embedding_dim=8", "model.hidden_size=8", "model.dropout=0.0"]
LM_META = DataMeta(vocab_size=50, pad_id=0, tokenizer_json="{}")
LM_TINY = ["experiment=imdb_lm", *TINY]
# the adaptive softmax's clusters sized for LM_META's 50 words
ADAPTIVE_TINY = ["model.decoder.cutoffs=[10,30]", "model.decoder.div_value=2.0"]
FOUR_CLASSES = DataMeta(
    vocab_size=60, pad_id=0, tokenizer_json="{}", label_names=("a", "b", "c", "d")
)


@functools.cache
def cached_config(overrides: tuple[str, ...]) -> dict:
    return model_config(list(overrides))


def fast_model(overrides: list[str], meta: DataMeta = BINARY, seed: int = 0) -> RecurrentModule:
    """make_model with the composed config cached (composing costs ~0.2 s) and a fixed seed."""
    torch.manual_seed(seed)
    return build_model(copy.deepcopy(cached_config(tuple(overrides))), meta)


def classifier(
    encoder: str, readout: str = "max", *extra: str, meta: DataMeta = BINARY, seed: int = 0
) -> RNNClassifier:
    model = fast_model([f"model={encoder}", f"model/readout={readout}", *TINY, *extra], meta, seed)
    assert isinstance(model, RNNClassifier)
    return model


def language_model(
    encoder: str, *extra: str, decoder: str = "adaptive", meta: DataMeta = LM_META, seed: int = 0
) -> RNNLanguageModel:
    """A tiny LM: `decoder` is an option of conf/model/decoder/."""
    sizes = ADAPTIVE_TINY if decoder == "adaptive" else []
    overrides = [*LM_TINY, f"model={encoder}", f"model/decoder={decoder}", *sizes, *extra]
    model = fast_model(overrides, meta, seed)
    assert isinstance(model, RNNLanguageModel)
    return model


def padded_batch(
    lengths: list[int], vocab_size: int = 60, seed: int = 1, num_classes: int = 2
) -> dict[str, Tensor]:
    """Right-padded ids (pad 0) with int64 labels, as the data modules give them."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (len(lengths), max(lengths)), generator=gen)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    labels = torch.arange(len(lengths)) % num_classes
    return {"input_ids": ids, "lengths": torch.tensor(lengths), "labels": labels}


def memory_items(n: int = 64, length: int = 15) -> list[tuple[np.ndarray, int]]:
    """The label is the first token; the rest is noise: the state must carry it across chunks."""
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        ids = torch.randint(3, 20, (length,), generator=gen)
        ids[0] = 1 + i % 2
        items.append((ids.numpy(), i % 2))
    return items


def keyword_items(n: int = 32, num_classes: int = 2) -> list[tuple[np.ndarray, int]]:
    """Noise of ids >= 10 with one class token (id 1 + label) somewhere: trivially separable."""
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        length = int(torch.randint(3, 15, (1,), generator=gen))
        ids = torch.randint(10, 40, (length,), generator=gen)
        ids[int(torch.randint(0, length, (1,), generator=gen))] = 1 + i % num_classes
        items.append((ids.numpy(), i % num_classes))
    return items


def torch_reference(layer: nn.Module, bidirectional_with: nn.Module | None = None) -> nn.RNNBase:
    """A one-layer nn.RNN / nn.LSTM / nn.GRU with an encoder layer's weights (and, given, the
    backward layer's as its reverse direction). An ElmanLayer becomes an nn.RNN with bias_hh = 0."""
    layers = [layer] if bidirectional_with is None else [layer, bidirectional_with]
    if isinstance(layer, nn.RNNBase):
        kwargs = {"nonlinearity": layer.nonlinearity} if isinstance(layer, nn.RNN) else {}
        reference = type(layer)(
            layer.input_size,
            layer.hidden_size,
            batch_first=True,
            bidirectional=bidirectional_with is not None,
            **kwargs,
        )
    else:  # ElmanLayer
        hidden, inputs = layer.weight_x.shape
        nonlinearity = "tanh" if layer.f is torch.tanh else "relu"
        reference = nn.RNN(
            inputs,
            hidden,
            nonlinearity=nonlinearity,
            batch_first=True,
            bidirectional=bidirectional_with is not None,
        )
    with torch.no_grad():
        for suffix, source in zip(("", "_reverse"), layers):
            if isinstance(source, nn.RNNBase):
                for name, param in source.named_parameters():
                    getattr(reference, name + suffix).copy_(param)
            else:
                getattr(reference, f"weight_ih_l0{suffix}").copy_(source.weight_x)
                getattr(reference, f"weight_hh_l0{suffix}").copy_(source.weight_h)
                getattr(reference, f"bias_ih_l0{suffix}").copy_(source.bias)
                getattr(reference, f"bias_hh_l0{suffix}").zero_()
    return reference


def stream_loader(batch_size: int = 3, steps: int = 5, n: int = 400, vocab_size: int = 50):
    """A language-model loader: chunks of `batch_size` parallel streams of random ids."""
    from torch.utils.data import DataLoader

    from rnnlab.data.lm import StreamChunks

    stream = np.random.default_rng(0).integers(1, vocab_size, n)
    return DataLoader(StreamChunks.layout(stream, batch_size, steps, pad_id=0), batch_size=None)


# the cells whose encoder reports (gates * H, H) recurrent matrices (`recurrent_weights()`)
MATRIX_CELLS = [cell for cell in ENCODERS if _reports_matrices(cell)]


def _has_torch_twin(cell: str) -> bool:
    """Whether `torch_reference` can rebuild the cell's layer as nn.RNN / nn.LSTM / nn.GRU."""
    from rnnlab.models.components.elman import ElmanLayer

    return isinstance(classifier(cell).encoder.forward_layers[0], (nn.RNNBase, ElmanLayer))


# the cells checked against torch's own recurrence (a brought cell has no such twin; the
# padding tests cover every cell)
TORCH_TWIN_CELLS = [cell for cell in ENCODERS if _has_torch_twin(cell)]


class VectorLayer(nn.Module):
    """An IndRNN-style layer: h_t = relu(W x_t + u * h_{t-1}), its recurrent weight a vector;
    `elementwise`: W is the identity (input size = hidden size), so the layer has no matmul."""

    def __init__(self, input_size: int, hidden_size: int, elementwise: bool = False) -> None:
        super().__init__()
        self.inputs = nn.Identity() if elementwise else nn.Linear(input_size, hidden_size)
        self.u = nn.Parameter(torch.rand(hidden_size))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        h = x.new_zeros(x.size(0), self.u.numel()) if state is None else state
        driven, outputs = self.inputs(x), []
        for t in range(x.size(1)):
            h = torch.relu(driven[:, t] + self.u * h)
            outputs.append(h)
        return torch.stack(outputs, 1), h
