from rnnlab.callbacks.throughput import TokenThroughput

__all__ = ["TokenThroughput"]
