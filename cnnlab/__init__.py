"""cnnlab: the core of the lab. Pure Python; TensorFlow is imported only inside
the functions that need a model, so that pages without one open instantly."""

__version__ = "0.1.0"
