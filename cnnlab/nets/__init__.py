"""cnnlab.nets."""
