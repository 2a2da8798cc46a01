from rnnlab.utils.checkpoint import read_checkpoint
from rnnlab.utils.errors import ConfigError, check
from rnnlab.utils.instantiate import instantiate_callbacks, instantiate_loggers
from rnnlab.utils.io import atomic_dir, atomic_write_text
from rnnlab.utils.task import task_wrapper

__all__ = [
    "ConfigError",
    "atomic_dir",
    "atomic_write_text",
    "check",
    "instantiate_callbacks",
    "instantiate_loggers",
    "read_checkpoint",
    "task_wrapper",
]
