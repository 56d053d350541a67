"""The explanation lab: where did the network look, how faithful is each answer, and does
it survive a sanity check?

    from cnnlab.vision.explain import explain
    report = explain(model, x)              # x: one preprocessed input (H, W, C)
    report.methods["gradcam"].map           # (H, W) in [0, 1]
    report.rows()                           # time, deletion and insertion AUC per method
    report.overlay("scorecam", view)        # the map over the image the network saw

Methods (one module each group): `cams` (Grad-CAM, Grad-CAM++, Score-CAM), `gradients`
(vanilla, SmoothGrad, Integrated Gradients), `occlusion`; scores: `faithfulness`
(deletion / insertion), `sanity` (cascading randomization; `add_sanity` runs it for a
report already made); `features` (activation maximization for the Train page's network);
for the pages, `lab` (their options, which methods apply, pictures) and `charts`.
Importing this package does not import TensorFlow; running a method does.
"""

from cnnlab.vision.explain.access import ModelAccess, access_for, last_conv_layer
from cnnlab.vision.explain.features import FeatureVisualization, grid_image, visualize_features
from cnnlab.vision.explain.maps import Attribution
from cnnlab.vision.explain.report import (
    METHODS,
    ExplainOptions,
    ExplanationReport,
    MethodReport,
    add_sanity,
    compute_method,
    explain,
)

__all__ = [
    "METHODS", "Attribution", "ExplainOptions", "ExplanationReport", "FeatureVisualization",
    "MethodReport", "ModelAccess", "access_for", "add_sanity", "compute_method", "explain",
    "grid_image", "last_conv_layer", "visualize_features",
]
