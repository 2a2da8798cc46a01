"""rnnlab: recurrent networks on IMDB with Lightning + Hydra."""

__version__ = "0.3.0"
