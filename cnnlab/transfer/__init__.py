"""cnnlab.transfer."""
