"""Errors every room shares. Each carries a one-line message meant for the user."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be used (a training run's, a transfer run's...).

    The convention for every config dataclass in cnnlab: `validate(self) -> None` checks
    every field and raises ConfigError with one line that names the field and quotes the
    bad value."""
