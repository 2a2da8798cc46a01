"""rnnlab: recurrent networks on IMDB with Lightning + Hydra."""

__version__ = "0.1.0"
