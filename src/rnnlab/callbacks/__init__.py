from rnnlab.callbacks.gradient_flow import GradientFlow
from rnnlab.callbacks.throughput import TokenThroughput

__all__ = ["GradientFlow", "TokenThroughput"]
