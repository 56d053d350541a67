"""cnnlab.vision."""
