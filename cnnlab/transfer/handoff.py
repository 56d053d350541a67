"""The trained classifier handed to the Classify page ("Use in Classify")."""

from __future__ import annotations

from cnnlab.transfer.run import TransferRun
from cnnlab.vision.custom_model import CustomModel


def classify_handoff(run: TransferRun) -> CustomModel:
    """What the Classify page needs to use the trained classifier
    (`st.session_state[cnnlab.vision.custom_model.SESSION_KEY]`).

    The model takes (n, image_size, image_size, 3) float32 in [-1, 1], i.e.
    `cnnlab.vision.images.inception_input(img, image_size)`, and outputs softmax over `labels`.
    """
    report = run.report()
    return {
        "model": run.model,
        "labels": list(run.class_names),
        "image_size": run.image_size,
        "preprocessing": "inception",  # cnnlab.vision.images.inception_input(img, image_size)
        "name": f"Transfer: Inception v3 + {len(run.class_names)}-class head "
                f"({', '.join(run.class_names)})",
        "pretrained_base": run.base_weights.pretrained,
        "test_accuracy": report.accuracy if report is not None else None,
    }
