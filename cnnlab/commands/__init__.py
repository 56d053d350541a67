"""One module per `python -m cnnlab` command (see cnnlab/__main__.py)."""
