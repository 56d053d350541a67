"""Classify: the page's path against raw `model.predict`, and a second session's memory.

1. Time. The page's path for one uploaded JPEG (decode with cnnlab.vision.images, centre-crop,
   resize, scale to [-1, 1], predict, decode the top-5 labels: `Classifier.classify_bytes`)
   against the baseline `model.predict` of the same Keras model on an already prepared
   (1, 299, 299, 3) tensor. Same process, interleaved, medians. Goal: ratio <= 1.2.
2. Memory. Two AppTest sessions of the real page in this process, each classifying a
   photo: the resident memory the second adds (the model is shared through
   st.cache_resource, so only the session's own results should count). Goal: < 50 MB.

Weights: CNNLAB_INCEPTION_WEIGHTS or the Keras cache when present; otherwise the
untrained network, which has the same architecture and so the same timings (said in the
output). Last line: ratio=<page path / model.predict>.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROUNDS = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_paths(mode: str) -> tuple[float, float, float]:
    from cnnlab.vision import images, inception

    classifier = inception.load_classifier(mode)
    data = images.sample_photo_bytes("chelsea")
    prepared = images.inception_input(images.decode_image(data, "chelsea.jpg"))[None]
    model = classifier.model
    model.predict(prepared, verbose=0)  # build Keras' predict function once
    classifier.classify_bytes(data, "chelsea.jpg")
    page, raw, forward = [], [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        model.predict(prepared, verbose=0)
        raw.append(time.perf_counter() - start)
        start = time.perf_counter()
        classifier.classify_bytes(data, "chelsea.jpg")
        page.append(time.perf_counter() - start)
        start = time.perf_counter()
        classifier.predict(prepared)
        forward.append(time.perf_counter() - start)
    return statistics.median(page), statistics.median(raw), statistics.median(forward)


def session_classifies(mode: str):
    """One browser session on the real page: open Classify, upload a photo, classify."""
    from streamlit.testing.v1 import AppTest

    from cnnlab.vision import images

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/classify.py")
    at.run()
    if mode == "untrained":
        at.toggle(key="classify_untrained").set_value(True).run()
    at.file_uploader(key="classify_uploads").set_value(
        ("chelsea.jpg", images.sample_photo_bytes("chelsea"), "image/jpeg")).run()
    if at.exception or not at.subheader or at.error:
        raise SystemExit(f"the page did not classify: {[e.value for e in at.exception]} "
                         f"{[e.value for e in at.error]}")
    return at


def main() -> None:
    from cnnlab.vision import inception

    status = inception.weights_status()
    mode = "auto" if status.on_disk else "untrained"
    weights = status.message if status.on_disk else "untrained network (no weights here; " \
        "same architecture, same timings)"
    print(f"weights: {weights}")

    page, raw, forward = time_paths(mode)
    print(f"page path (decode, preprocess, predict, top-5 labels): {page * 1000:.1f} ms median "
          f"of {ROUNDS}; model.predict on a prepared tensor: {raw * 1000:.1f} ms")
    # The page calls one traced tf.function instead of model.predict (which builds a data
    # adapter per call); against that bare forward pass, the rest of the path costs:
    print(f"bare traced forward pass on the prepared tensor: {forward * 1000:.1f} ms; decoding, "
          f"preprocessing and labels add {(page - forward) * 1000:.1f} ms "
          f"(page path / bare forward = {page / forward:.2f})")

    sessions = [session_classifies(mode)]  # loads the shared model, first-run allocations
    gc.collect()
    before = rss_mb()
    sessions.append(session_classifies(mode))
    gc.collect()
    added = rss_mb() - before
    print(f"resident memory: {before:.0f} MB after one session; a second session that "
          f"classifies adds {added:.1f} MB (goal < 50 MB)")
    print(f"second_session_mb={added:.1f}")
    print(f"ratio={page / raw:.2f}")


if __name__ == "__main__":
    main()
