from rnnlab.utils.checkpoint import read_checkpoint
from rnnlab.utils.entry_point import entry_point
from rnnlab.utils.errors import ConfigError, check
from rnnlab.utils.instantiate import instantiate_callbacks, instantiate_loggers
from rnnlab.utils.io import atomic_dir, atomic_write_text

__all__ = [
    "ConfigError",
    "atomic_dir",
    "atomic_write_text",
    "check",
    "instantiate_callbacks",
    "instantiate_loggers",
    "read_checkpoint",
    "entry_point",
]
