from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.lm import IMDBLMDataModule
from rnnlab.data.sampler import BucketBatchSampler

__all__ = ["BucketBatchSampler", "IMDBDataModule", "IMDBLMDataModule"]
