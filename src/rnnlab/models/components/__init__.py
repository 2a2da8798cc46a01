"""The network's parts, each built from config with `_target_` (see conf/model/)."""

from rnnlab.models.components.attention import AttentionReadout
from rnnlab.models.components.elman import ElmanEncoder
from rnnlab.models.components.embedding import InputProjection, TokenEmbedding
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
    StepReadout,
)
from rnnlab.models.components.task import Classification, Recall, Regression, Task

__all__ = [
    "AttentionReadout",
    "Classification",
    "ConcatReadout",
    "ElmanEncoder",
    "Encoder",
    "GRUEncoder",
    "InputProjection",
    "LSTMEncoder",
    "LastReadout",
    "MaxReadout",
    "MeanReadout",
    "RNNEncoder",
    "Readout",
    "Recall",
    "RecurrentWeights",
    "Regression",
    "StackedEncoder",
    "StepReadout",
    "Task",
    "TokenEmbedding",
]
