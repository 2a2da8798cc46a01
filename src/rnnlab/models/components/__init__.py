"""The network's parts, each built from config with `_target_` (see conf/model/)."""

from rnnlab.models.components.attention import AttentionReadout
from rnnlab.models.components.elman import ElmanEncoder
from rnnlab.models.components.embedding import TokenEmbedding
from rnnlab.models.components.encoder import (
    Encoder,
    GRUEncoder,
    LSTMEncoder,
    RNNEncoder,
    StackedEncoder,
)
from rnnlab.models.components.init import RecurrentWeights
from rnnlab.models.components.readout import (
    ConcatReadout,
    LastReadout,
    MaxReadout,
    MeanReadout,
    Readout,
)

__all__ = [
    "AttentionReadout",
    "ConcatReadout",
    "ElmanEncoder",
    "Encoder",
    "GRUEncoder",
    "LSTMEncoder",
    "LastReadout",
    "MaxReadout",
    "MeanReadout",
    "RNNEncoder",
    "Readout",
    "RecurrentWeights",
    "StackedEncoder",
    "TokenEmbedding",
]
