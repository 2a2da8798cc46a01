from rnnlab.models.base import RecurrentModule, TrainingDiverged
from rnnlab.models.build import build_model, model_from_checkpoint
from rnnlab.models.classifier import RNNClassifier
from rnnlab.models.lm import RNNLanguageModel

__all__ = [
    "RNNClassifier",
    "RNNLanguageModel",
    "RecurrentModule",
    "TrainingDiverged",
    "build_model",
    "model_from_checkpoint",
]
