"""`explain(model, x)`: every method's map, time and faithfulness, and the sanity check, in
one call; the report holds everything the Classify and Train pages draw and the CLI prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.vision.explain import cams, gradients, occlusion
from cnnlab.vision.explain.access import ModelAccess, access_for
from cnnlab.vision.explain.faithfulness import FaithfulnessCurves, deletion_insertion
from cnnlab.vision.explain.maps import Attribution
from cnnlab.vision.explain.sanity import SanityResult, cascading_randomization

if TYPE_CHECKING:  # pragma: no cover
    import keras
    from PIL import Image

# name -> what a student reads. The names are the CLI's --methods.
METHODS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "gradients": "Vanilla gradients",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Occlusion",
}
# Below this rank correlation with the trained model's map, a randomized map "changed".
SIMILAR = 0.5

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ExplainOptions:
    layer: str | None = None               # conv layer of the CAMs; None: the last one
    scorecam_channels: int | None = None   # None: every channel (the paper); N: the N most active
    smoothgrad_samples: int = 25           # Smilkov et al.: 25-50 samples suffice
    smoothgrad_noise: float = 0.15         # sigma / (max x - min x); they recommend 10-20 %
    ig_steps: int = 32                     # first trapezoid grid; doubled until complete
    ig_max_steps: int = 256
    ig_tolerance: float = 0.01             # completeness: |sum - (f(x) - f(x'))| / |f(x) - f(x')|
    occlusion_patch: int | None = None     # None: about an eighth of the input side
    occlusion_stride: int | None = None    # None: half the patch (see occlusion_overlap)
    occlusion_overlap: bool = True         # False: patches side by side, a quarter of the passes
    faithfulness_steps: int = 32           # deletion / insertion points beyond the first
    insertion_start: str = "blur"          # RISE's blurred canvas, or "fill" (zeros)
    sanity_depth: int | None = 4           # blocks randomized, top first; None: all
    batch_size: int = 16                   # inputs per forward pass; Inception on 2 CPU cores:
                                           # 56 ms an image at 16, 64 at 32, 68 at 1
    seed: int = 0


def compute_method(access: ModelAccess, method: str, x: np.ndarray, class_index: int,
                   options: ExplainOptions = ExplainOptions()) -> Attribution:
    """One method's attribution, by its name in METHODS."""
    o = options
    if method == "gradcam":
        return cams.grad_cam(access, x, class_index)
    if method == "gradcam++":
        return cams.grad_cam_plus_plus(access, x, class_index)
    if method == "scorecam":
        return cams.score_cam(access, x, class_index, o.batch_size, o.scorecam_channels)
    if method == "gradients":
        return gradients.vanilla_gradients(access, x, class_index)
    if method == "smoothgrad":
        return gradients.smoothgrad(access, x, class_index, o.smoothgrad_samples,
                                    o.smoothgrad_noise, o.seed, o.batch_size)
    if method == "integrated_gradients":
        return gradients.integrated_gradients(access, x, class_index, 0.0, o.ig_steps,
                                              o.ig_max_steps, o.ig_tolerance, o.batch_size)
    if method == "occlusion":
        return occlusion.occlusion(access, x, class_index, o.occlusion_patch,
                                   o.occlusion_stride, 0.0, o.batch_size, o.occlusion_overlap)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


@dataclass
class MethodReport:
    method: str
    label: str
    map: np.ndarray                  # (H, W) in [0, 1] over the input
    seconds: float
    curves: FaithfulnessCurves
    details: dict[str, Any]
    randomized: list[tuple[str, float, np.ndarray]] = field(default_factory=list)
    # (block re-drawn, Spearman rho with `map`, the randomized model's map), top block first

    deletion_auc = property(lambda self: self.curves.deletion_auc)    # the curves' two scores
    insertion_auc = property(lambda self: self.curves.insertion_auc)

    @property
    def randomized_similarity(self) -> list[tuple[str, float]]:
        return [(block, rho) for block, rho, _ in self.randomized]

    def verdict(self) -> str:
        """What the sanity check says about this method, in one sentence."""
        if not self.randomized:
            return "not checked (run the sanity check)"
        changed = [(b, r) for b, r, _ in self.randomized if abs(r) < SIMILAR]
        if not changed:
            block, rho, _ = self.randomized[-1]
            return (f"fails: with every block down to {block} re-drawn the map is still "
                    f"similar (rank correlation {rho:.2f}); it shows the image more than "
                    f"what the network learned")
        block, rho = changed[0]
        if block == self.randomized[0][0]:
            return (f"passes: re-drawing {block} already changed the map (rank correlation "
                    f"{rho:.2f}), so it depends on what the network learned")
        return (f"passes late: the map stayed similar until {block} was re-drawn "
                f"(rank correlation {rho:.2f})")


@dataclass
class ExplanationReport:
    class_index: int
    output: float                    # the model's output for the class (its probability)
    input_shape: tuple[int, int, int]
    layer: str | None                # the conv layer of the CAMs (None: the model has none)
    methods: dict[str, MethodReport]
    sanity: SanityResult | None
    seconds: float

    def overlay(self, method: str, view: Image.Image, alpha: float = 0.45) -> Image.Image:
        """The method's map blended over `view` (the image the network saw, any size)."""
        from cnnlab.vision import gradcam

        return gradcam.overlay(view, self.methods[method].map, alpha)

    def overlays(self, view: Image.Image, alpha: float = 0.45) -> dict[str, Image.Image]:
        return {name: self.overlay(name, view, alpha) for name in self.methods}

    def randomized_overlays(self, method: str, view: Image.Image,
                            alpha: float = 0.45) -> list[tuple[str, float, Image.Image]]:
        """(block re-drawn, Spearman rho, the randomized model's map over `view`) per step."""
        from cnnlab.vision import gradcam

        return [(block, rho, gradcam.overlay(view, heat, alpha))
                for block, rho, heat in self.methods[method].randomized]

    def most_faithful(self) -> dict[str, str]:
        """The method whose deletion curve falls fastest (lowest area) and the one whose
        insertion curve rises fastest (highest area), by name."""
        methods = list(self.methods.values())
        return {"deletion": min(methods, key=lambda m: m.deletion_auc).method,
                "insertion": max(methods, key=lambda m: m.insertion_auc).method}

    def output_range(self) -> tuple[float, float]:
        """The lowest and highest output for the class on every curve: when they are
        nearly equal (an untrained network's uniform softmax) the scores rank nothing."""
        values = np.concatenate([np.concatenate([m.curves.deletion, m.curves.insertion])
                                 for m in self.methods.values()])
        return float(values.min()), float(values.max())

    def rows(self) -> list[dict[str, Any]]:
        """One row per method for a table: label, seconds, deletion and insertion AUC."""
        rows = []
        for m in self.methods.values():
            row = {"method": m.label, "seconds": round(m.seconds, 3),
                   "deletion AUC (lower is better)": round(m.deletion_auc, 4),
                   "insertion AUC (higher is better)": round(m.insertion_auc, 4)}
            for block, rho in m.randomized_similarity:
                row[f"rho after {block}"] = round(rho, 3)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON object."""
        out: dict[str, Any] = {"class": self.class_index, "output": round(self.output, 6),
                               "layer": self.layer, "seconds": round(self.seconds, 3),
                               "methods": {}}
        for name, m in self.methods.items():
            entry: dict[str, Any] = {"map_shape": list(m.map.shape), "seconds": round(m.seconds, 4),
                                     "deletion_auc": round(m.deletion_auc, 6),
                                     "insertion_auc": round(m.insertion_auc, 6)}
            if "completeness_gap" in m.details:
                entry["completeness_gap"] = round(m.details["completeness_gap"], 6)
                entry["steps"] = m.details["steps"]
            if "channels" in m.details:
                entry["channels"] = m.details["channels"]
            if m.randomized:
                entry["randomized_similarity"] = [{"block": b, "spearman": round(r, 4)}
                                                  for b, r in m.randomized_similarity]
            out["methods"][name] = entry
        return out


def explain(model: keras.Model, image_array: np.ndarray, class_index: int | None = None,
            methods: tuple[str, ...] | list[str] = tuple(METHODS), sanity: bool = False,
            progress: Progress | None = None,
            options: ExplainOptions = ExplainOptions()) -> ExplanationReport:
    """Explain the model's decision for one preprocessed input (H, W, C), for `class_index`
    (default: the top class): each method's map and time, its deletion and insertion
    scores, and with `sanity` the cascading randomization. progress(fraction, text) is
    called between stages."""
    start = time.perf_counter()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(METHODS)}")
    access = access_for(model, options.layer)
    x = access.check_input(image_array)
    outputs = access.outputs(x[None])[0]
    class_index = int(np.argmax(outputs)) if class_index is None else access.check_class(class_index)
    stages = len(methods) + (len(methods) if sanity else 0)

    def report(done: float, text: str) -> None:
        if progress is not None:
            progress(min(done / stages, 1.0), text)

    results: dict[str, MethodReport] = {}
    for i, name in enumerate(methods):
        report(i, f"{METHODS[name]}…")
        attribution = compute_method(access, name, x, class_index, options)
        curves = deletion_insertion(access, x, attribution.map, class_index,
                                    options.faithfulness_steps, 0.0, options.insertion_start,
                                    options.batch_size)
        results[name] = MethodReport(name, METHODS[name], attribution.map, attribution.seconds,
                                     curves, attribution.details)
    explanation = ExplanationReport(class_index, float(outputs[class_index]), access.input_shape,
                                    access.layer, results, None, 0.0)
    if sanity:
        add_sanity(model, x, explanation, options,
                   lambda fraction, text: report(len(methods) * (1 + fraction), text))
    report(stages, "done")
    explanation.seconds = time.perf_counter() - start
    return explanation


def add_sanity(model: keras.Model, image_array: np.ndarray, report: ExplanationReport,
               options: ExplainOptions = ExplainOptions(),
               progress: Progress | None = None) -> ExplanationReport:
    """The sanity check for a report already made (same model, input and options): the
    cascading randomization of the methods in `report`, filled in place (a second call
    replaces the first). progress(fraction, text) is called between steps."""
    start = time.perf_counter()
    access = access_for(model, options.layer)
    x = access.check_input(image_array)
    c = report.class_index
    result = cascading_randomization(
        model, x, c,
        lambda copy_access, name: compute_method(copy_access, name, x, c, options).map,
        {name: r.map for name, r in report.methods.items()}, access.layer,
        options.sanity_depth, options.seed, progress)
    for name, r in report.methods.items():
        r.randomized = [(step.block, step.similarity[name], step.maps[name])
                        for step in result.steps]
    report.sanity = result
    report.seconds += time.perf_counter() - start
    return report
