from rnnlab.models.classifier import RNNClassifier, classifier_from_checkpoint
from rnnlab.models.encoder import RecurrentEncoder

__all__ = ["RNNClassifier", "RecurrentEncoder", "classifier_from_checkpoint"]
