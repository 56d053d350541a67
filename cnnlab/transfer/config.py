"""What a transfer run is asked to do: `TransferConfig` and its `Augmentation`.

Plain dataclasses (no Keras). `validate()` follows cnnlab's one convention (`cnnlab.errors`):
it returns None and raises `ConfigError` with one line naming the field and its bad value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cnnlab.errors import ConfigError

MIN_IMAGE_SIZE = 75  # keras.applications.inception_v3: "width and height should be no smaller than 75"
MAX_IMAGE_SIZE = 299  # the size the ImageNet weights were trained at
IMAGE_SIZES = (75, 96, 128, 160, 192, 224, 299)
# Phase 2: the last layer that stays frozen when unfreezing the top N inception blocks.
# Keras' fine-tuning example unfreezes the top two blocks: everything after "mixed8".
TOP_BLOCK_BOUNDARY = {1: "mixed9", 2: "mixed8"}
MODES = ("fast", "full")


@dataclass(frozen=True)
class Augmentation:
    """Keras preprocessing layers applied to training images only (inactive at inference)."""

    flip: bool = True       # RandomFlip("horizontal")
    rotation: bool = True   # RandomRotation(0.05): up to ±18° (a fraction of a full turn)
    zoom: bool = True       # RandomZoom(0.15): in or out by up to 15 %
    contrast: bool = True   # RandomContrast(0.2) on the [-1, 1] range

    ROTATION_FACTOR = 0.05
    ZOOM_FACTOR = 0.15
    CONTRAST_FACTOR = 0.2

    @property
    def enabled(self) -> bool:
        return self.flip or self.rotation or self.zoom or self.contrast

    def describe(self) -> str:
        parts = [name for name, on in (("flip", self.flip), ("rotation", self.rotation),
                                        ("zoom", self.zoom), ("contrast", self.contrast)) if on]
        return ", ".join(parts) if parts else "none"


NO_AUGMENTATION = Augmentation(flip=False, rotation=False, zoom=False, contrast=False)


@dataclass(frozen=True)
class TransferConfig:
    mode: str = "fast"                     # "fast" (cached bottlenecks) or "full" (see cnnlab.transfer)
    image_size: int = MAX_IMAGE_SIZE       # square input side; 75..299
    epochs: int = 5                        # phase 1 (the head)
    batch_size: int = 32
    learning_rate: float = 1e-3            # Adam, phase 1
    augmentation: Augmentation = field(default_factory=Augmentation)  # used by "full" and phase 2
    fine_tune_blocks: int = 0              # phase 2: 0 = off, 1 or 2 top inception blocks
    fine_tune_epochs: int = 2
    fine_tune_learning_rate: float = 1e-5  # low, so the pretrained filters are only nudged
    seed: int = 0

    def validate(self) -> None:
        """ConfigError with a one-line message for an unusable setting."""
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"image size must be {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels "
                              f"(Inception v3's limits); got {self.image_size}")
        if not 1 <= self.epochs <= 200 or not 0 <= self.fine_tune_epochs <= 200:
            raise ConfigError("epochs must be 1..200 (phase 2: 0..200); got "
                              f"{self.epochs} and {self.fine_tune_epochs}")
        if not 1 <= self.batch_size <= 1024:
            raise ConfigError(f"batch size must be 1..1024; got {self.batch_size}")
        if self.fine_tune_blocks not in (0, *TOP_BLOCK_BOUNDARY):
            raise ConfigError(f"fine-tune blocks must be 0, 1 or 2; got {self.fine_tune_blocks}")
        if not (0 < self.learning_rate < 1 and 0 < self.fine_tune_learning_rate < 1):
            raise ConfigError("learning rates must be between 0 and 1; got "
                              f"{self.learning_rate} and {self.fine_tune_learning_rate}")

    @property
    def phase2(self) -> bool:
        return self.fine_tune_blocks > 0 and self.fine_tune_epochs > 0

    @property
    def other_mode(self) -> TransferConfig:
        """The same run in the other mode (fast <-> full), everything else equal."""
        return replace(self, mode="full" if self.mode == "fast" else "fast")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
