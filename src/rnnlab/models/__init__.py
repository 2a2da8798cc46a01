from rnnlab.models.classifier import RNNClassifier, classifier_from_checkpoint
from rnnlab.models.encoder import RecurrentEncoder
from rnnlab.models.lm import RNNLanguageModel, language_model_from_checkpoint

__all__ = [
    "RNNClassifier",
    "RNNLanguageModel",
    "RecurrentEncoder",
    "classifier_from_checkpoint",
    "language_model_from_checkpoint",
]
