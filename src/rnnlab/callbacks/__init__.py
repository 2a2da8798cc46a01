from rnnlab.callbacks.gradient_flow import GradientFlow
from rnnlab.callbacks.interrupt import SaveOnInterrupt
from rnnlab.callbacks.resume import ExactResume
from rnnlab.callbacks.throughput import TokenThroughput

__all__ = ["ExactResume", "GradientFlow", "SaveOnInterrupt", "TokenThroughput"]
