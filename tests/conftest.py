"""Shared test set-up: quiet TensorFlow, an isolated Keras cache, the project root."""

from __future__ import annotations

import os
from pathlib import Path

from tests import ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests never use the user's Keras cache: downloads are impossible offline, and a
# cached file would make a test pass here and fail in CI. Set before `import keras`.
os.environ.setdefault("KERAS_HOME", str(ROOT / ".pytest_cache" / "keras_home"))
Path(os.environ["KERAS_HOME"]).mkdir(parents=True, exist_ok=True)

# Fixtures shared by several test modules (Inception weight files, a transfer-style model).
pytest_plugins = ["tests.inception_fixtures", "tests.ray_fixtures"]
