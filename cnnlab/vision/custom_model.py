"""A classifier another page hands to the Classify page for this browser session
(the Transfer page's "Use in Classify"): the session_state key and what it holds."""

from __future__ import annotations

from typing import Any, TypedDict

SESSION_KEY = "classify_custom_model"  # st.session_state[SESSION_KEY]: a CustomModel


class CustomModel(TypedDict):
    model: Any                   # a keras.Model: (n, size, size, 3) in [-1, 1] -> softmax
    labels: list[str]            # one name per output unit
    image_size: int              # the model's square input side
    preprocessing: str           # "inception": cnnlab.vision.images.inception_input(img, size)
    name: str                    # shown on the Classify page
    pretrained_base: bool        # False: trained on an untrained base (the page warns)
    test_accuracy: float | None  # on the run's test images, when it was evaluated
