"""cnnlab.ui."""
