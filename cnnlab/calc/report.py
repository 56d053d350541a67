"""The calculator's numbers as people read them: byte sizes, the per-layer table, the
headline totals, the training-memory terms, the make-it-fit table and the seed exercise's
worked answer. Plain values and strings; the calculator page and the CLI only lay them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from cnnlab.calc.analysis import ModelStats
from cnnlab.calc.fit import FitOption
from cnnlab.calc.grammar import pair_text
from cnnlab.calc.memory import DTYPES, GB, MB, PARAM_BYTES, MemoryEstimate


def format_bytes(n: float | None) -> str:
    """'12.61 MB' below 1 GB, else '2.27 GB' (decimal units); past 10^21 GB (far past the
    calculator's limits) '1.00e+25 GB'. Never raises: '-' for None, NaN or an infinity."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "-"
    if abs(n) >= GB * 10**21:
        # Integer division first: a huge int over GB would not fit a float.
        gb = n // GB
        return f"{gb:.2e} GB" if abs(gb) < 10**300 else "more than 10^300 GB"
    if abs(n) >= GB:
        return f"{n / GB:,.2f} GB"
    return f"{n / MB:,.2f} MB"


def stats_rows(stats: ModelStats) -> list[dict[str, object]]:
    """One row per layer for the page's table."""
    act = DTYPES[stats.memory.dtype]
    return [{
        "#": i, "layer": layer.name, "kind": layer.kind, "inputs": ", ".join(layer.inputs),
        "output": " x ".join(map(str, layer.output_shape)), "params": layer.params,
        "trainable": layer.trainable_params, "non-trainable": layer.non_trainable_params,
        "MACs": layer.macs, "activation MB": layer.activation_elems * act / MB,
        "receptive field": ("whole input" if layer.receptive_field is None
                            else pair_text(layer.receptive_field_hw)),  # type: ignore[arg-type]
    } for i, layer in enumerate(stats.layers, start=1)]


@dataclass(frozen=True)
class Total:
    """One headline number (a metric on the page)."""

    label: str
    value: str
    help: str
    delta: str | None = None  # e.g. "36% of 16 GB"
    over: bool = False  # the delta is bad news: training does not fit


def totals(stats: ModelStats, gpu_bytes: float, framework=None, measured=None) -> list[Total]:
    """The six headline numbers: parameters, FLOPs, predicting one instance, training one
    batch (against the GPU), the largest batch that fits, parameter memory. `framework` (a
    FrameworkEstimate) and `measured` (a Measurement) lead the largest batch when given."""
    m = stats.memory
    gpu = f"{gpu_bytes / GB:g} GB"
    return [
        Total("Parameters", f"{stats.total_params:,}",
              f"{stats.trainable_params:,} trainable, {stats.non_trainable_params:,} "
              f"non-trainable; {format_bytes(m.params_bytes)} as float32"),
        Total("FLOPs per instance", f"{stats.flops / 1e9:,.3f} G",
              f"FLOPs = 2 x MACs; {stats.total_macs:,} multiply-accumulates"),
        Total("Predict one instance", format_bytes(m.inference_bytes),
              f"peak live activations {format_bytes(m.inference_activation_bytes)} "
              f"+ parameters {format_bytes(m.params_bytes)}"),
        Total(f"Train one batch of {m.batch}", format_bytes(m.training_bytes),
              "activations, input batch, parameters, gradients, optimizer slots: see Training "
              "memory below",
              delta=f"{m.training_bytes / gpu_bytes:.0%} of {gpu}",
              over=m.training_bytes > gpu_bytes),
        largest_total(stats, gpu_bytes, framework, measured),
        Total("Parameter memory", format_bytes(m.params_bytes),
              f"float32 ({PARAM_BYTES} bytes) per parameter, also under mixed precision"),
    ]


def training_rows(memory: MemoryEstimate) -> list[dict[str, object]]:
    """The training memory term by term (MB and how each is computed), then the total."""
    return ([{"term": term, "MB": value / MB, "how": how}
             for term, value, how in memory.training_terms()]
            + [{"term": "total", "MB": memory.training_bytes / MB, "how": ""}])


def fit_rows(options: Iterable[FitOption]) -> list[dict[str, object]]:
    """The make-it-fit table: one row per remedy, the model's training memory (the framework
    model's by default) with the textbook count beside it."""
    return [{"remedy": o.remedy, "change": o.change,
             "training memory": format_bytes(o.training_bytes),
             "textbook count": format_bytes(o.textbook_bytes), "fits": o.fits,
             "cost": o.cost} for o in options]


def largest_total(stats: ModelStats, gpu_bytes: float, framework=None, measured=None) -> Total:
    """The largest batch that fits (issue 12: honest headline numbers): the measured line
    when this configuration was measured, else the framework model, with the textbook count
    beside it."""
    m = stats.memory
    textbook = stats.max_batch(gpu_bytes)
    where = f"training, {m.dtype}, {m.optimizer}, in {gpu_bytes / GB:g} GB"
    if measured is not None:
        value = measured.max_batch(gpu_bytes)
        source = "from the measured line (Measure on this machine, below)" + (
            f"; framework model {framework.max_batch(gpu_bytes):,}" if framework else "")
    elif framework is not None:
        value = framework.max_batch(gpu_bytes)
        source = ("from the framework model: what Keras on TensorFlow keeps (see Training "
                  "memory)")
    else:
        return Total("Largest batch that fits", f"{textbook:,}", where)
    return Total("Largest batch that fits", f"{value:,}",
                 f"{where}, {source}; the textbook count says {textbook:,}",
                 delta=f"textbook: {textbook:,}")


def measurement_rows(measured, framework, stats: ModelStats) -> list[dict[str, object]]:
    """Measured beside both models at the two measured batches, per sample and fixed."""
    (b1, b2), (p1, p2) = measured.batches, measured.peaks
    textbook = stats.at(batch=b2, accum_steps=1).memory
    textbook1 = stats.at(batch=b1, accum_steps=1).memory
    rows = [
        {"": f"peak at batch {b2}", "measured": p2, "framework model": framework.at(b2),
         "textbook": textbook.training_bytes},
        {"": f"peak at batch {b1}", "measured": p1, "framework model": framework.at(b1),
         "textbook": textbook1.training_bytes},
        {"": "per sample", "measured": measured.per_sample_bytes,
         "framework model": framework.slope(b1, b2), "textbook": textbook.per_sample_bytes},
        {"": "fixed (batch 0)", "measured": measured.fixed_bytes,
         "framework model": framework.at(b1) - b1 * framework.slope(b1, b2),
         "textbook": textbook.fixed_bytes},
    ]
    for row in rows:
        row["framework / measured"] = row["framework model"] / row["measured"] \
            if row["measured"] else None
        row["textbook / measured"] = row["textbook"] / row["measured"] if row["measured"] else None
    return rows


def seed_exercise_note(stats: ModelStats) -> str:
    """The seed's exercise 2 worked through with these numbers (in float32, as the exercise),
    next to the seed's own answers."""
    seed = stats.at(dtype="float32", accum_steps=1).memory
    per_layer = " + ".join(f"{layer.params:,}" for layer in stats.layers)
    maps = ", ".join(format_bytes(DTYPES["float32"] * layer.activation_elems)
                     for layer in stats.layers)
    state = ("state (the seed says 480 MB)" if seed.batch == 50 else
             "state (the exercise asks about a batch of 50)")
    return (
        f"**The seed's exercise, computed** (float32, as the exercise). Parameters: {per_layer} "
        f"= **{stats.total_params:,}** (the seed says 6,100). Feature maps of one instance: "
        f"{maps}. Predicting one instance needs **{format_bytes(seed.inference_bytes)}** "
        f"(two consecutive maps + parameters; the seed says 9.6 MB). Training a batch of "
        f"{seed.batch} keeps every map: {format_bytes(seed.activations_bytes)} + "
        f"{format_bytes(seed.input_batch_bytes)} of input images + "
        f"{format_bytes(seed.params_bytes)} of parameters = "
        f"**{format_bytes(seed.before_gradients_bytes)}** before gradients and optimizer "
        f"{state}; the totals above add those.")
