from rnnlab.data.datamodule import TextClassificationDataModule
from rnnlab.data.lm import LanguageModelDataModule
from rnnlab.data.sampler import BucketBatchSampler
from rnnlab.data.synthetic import AddingDataModule, CopyDataModule, SelectiveCopyDataModule

__all__ = [
    "AddingDataModule",
    "BucketBatchSampler",
    "CopyDataModule",
    "LanguageModelDataModule",
    "SelectiveCopyDataModule",
    "TextClassificationDataModule",
]
