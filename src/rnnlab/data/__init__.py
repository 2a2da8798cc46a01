from rnnlab.data.datamodule import TextClassificationDataModule
from rnnlab.data.lm import LanguageModelDataModule
from rnnlab.data.sampler import BucketBatchSampler

__all__ = ["BucketBatchSampler", "LanguageModelDataModule", "TextClassificationDataModule"]
