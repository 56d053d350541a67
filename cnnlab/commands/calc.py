"""`python -m cnnlab calc`: shapes, parameters, FLOPs and memory of a conv stack.

    python -m cnnlab calc --input 200x300x3 --layer conv:100:3:2:same \\
        --layer conv:200:3:2:same --layer conv:400:3:2:same --batch 50 --json

`--help` prints the layer grammar (`cnnlab.calc.grammar.GRAMMAR_HELP`), the memory model
(`cnnlab.calc.memory.MEMORY_ASSUMPTIONS`) and the calculator's limits
(`cnnlab.calc.spec.LIMITS`). Every value is checked, within those limits, before any is used:
a bad one is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

# Only the pure-Python calculator: this command never imports TensorFlow.
from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.framework_memory import FrameworkEstimate, framework_estimate
from cnnlab.calc.grammar import GRAMMAR_HELP, parse_input_shape, parse_layer, where_text
from cnnlab.calc.measure import MeasureError, Measurement, measure
from cnnlab.calc.memory import DTYPES, GB, MB, MEMORY_ASSUMPTIONS, OPTIMIZER_SLOTS
from cnnlab.calc.presets import PRESET_BATCH, PRESETS
from cnnlab.calc.spec import (
    LIMITS,
    MAX_BATCH,
    MAX_GPU_GB,
    MAX_LAYERS,
    MIN_GPU_GB,
    LimitError,
    SpecError,
    is_digits,
    over_limit,
    shown,
)
from cnnlab.ui.safe import one_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are taken as text and checked in run(), so a bad one gives one line, not usage.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = epilog()
    parser.add_argument("--input", metavar="HxWxC", help="input size, e.g. 200x300x3")
    parser.add_argument("--layer", action="append", default=[], metavar="SPEC",
                        help="a layer, in order (repeat): e.g. conv:100:3:2:same")
    parser.add_argument("--preset", metavar="NAME",
                        help=f"start from a preset network: {', '.join(PRESETS)}")
    parser.add_argument("--batch", metavar="N", help="training batch size (default 1, or the "
                        "preset's)")
    parser.add_argument("--dtype", default="float32", metavar="|".join(DTYPES),
                        help="float32 (default) or mixed_float16 (16-bit activations)")
    parser.add_argument("--optimizer", default="adam", metavar="|".join(OPTIMIZER_SLOTS),
                        help="optimizer slots per parameter: " + ", ".join(
                            f"{name} {slots}" for name, slots in OPTIMIZER_SLOTS.items())
                        + " (default adam)")
    parser.add_argument("--accum", default="1", metavar="K",
                        help="gradient accumulation steps (micro-batch = batch / K)")
    parser.add_argument("--gpu", metavar="GB", help="GPU memory in GB: also print the largest "
                        "batch that fits")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--measure", action="store_true",
                        help="also run one real training step (Adam unless --optimizer) on "
                        "this machine at half the (micro-)batch and at the (micro-)batch, "
                        "each in a fresh child process: TensorFlow's allocator peak beside "
                        "the models")


def _bullets(lines: tuple[str, ...]) -> str:
    return "\n".join(textwrap.fill(line, 88, initial_indent="- ", subsequent_indent="  ")
                     for line in lines)


def epilog() -> str:
    """The layer grammar, the memory model and the limits, as `--help` prints them after the
    options."""
    return (f"Layer grammar:\n{GRAMMAR_HELP}\n\nMemory model:\n{_bullets(MEMORY_ASSUMPTIONS)}"
            f"\n\nLimits:\n{_bullets(LIMITS)}")


def _positive_int(text: str, option: str, high: int) -> int:
    """A positive integer of at most `high` from an option's text; SpecError otherwise."""
    try:
        value = int(text)
    except ValueError:  # not an integer, or past Python's 4,300 digits
        value = high + 1 if is_digits(text.strip()) else 0
    if value < 1:
        raise SpecError(f"{option}: must be a positive integer, got {shown(text)}")
    if value > high:
        raise over_limit(option, "", text, high)
    return value


def _gpu_bytes(text: str) -> float:
    """--gpu GB as bytes, from MIN_GPU_GB to MAX_GPU_GB (so never inf, nan or 0)."""
    try:
        gb = float(text)
    except ValueError:
        gb = float("nan")
    if not MIN_GPU_GB <= gb <= MAX_GPU_GB:  # false for nan
        raise SpecError(f"--gpu: must be a positive number of GB from {MIN_GPU_GB} to "
                        f"{MAX_GPU_GB:,}, got {shown(text)}")
    return gb * GB


def to_json(stats: ModelStats, gpu_bytes: float | None = None,
            framework: FrameworkEstimate | None = None,
            measured: Measurement | MeasureError | None = None) -> dict:
    """The --json object: per-layer numbers, totals and the memory estimate (bytes): the
    textbook terms, the framework model (`memory.framework`) and, with --measure,
    `measured` (or `measured.error` and `measured.message`)."""
    m = stats.memory
    memory = {
        "params_bytes": m.params_bytes, "inference_bytes": m.inference_bytes,
        "training_bytes": m.training_bytes,
        "training_terms": {term: value for term, value, _ in m.training_terms()},
        "before_gradients_bytes": m.before_gradients_bytes,
        "batch": m.batch, "micro_batch": m.micro_batch, "accum_steps": m.accum_steps,
        "dtype": m.dtype, "optimizer": m.optimizer,
    }
    if framework is not None:
        memory["framework"] = framework.to_json()
    if gpu_bytes is not None:
        memory["gpu_bytes"] = gpu_bytes
        # The headline: measured if measured, else the framework model; textbook beside.
        memory["max_batch_textbook"] = stats.max_batch(gpu_bytes)
        memory["max_batch"] = memory["max_batch_textbook"]
        memory["max_batch_from"] = "textbook"
        if framework is not None:
            memory["max_batch_framework"] = framework.max_batch(gpu_bytes)
            memory["max_batch"], memory["max_batch_from"] = memory["max_batch_framework"], \
                "framework"
        if isinstance(measured, Measurement):
            memory["max_batch_measured"] = measured.max_batch(gpu_bytes)
            memory["max_batch"], memory["max_batch_from"] = memory["max_batch_measured"], \
                "measured"
    result = {
        "input_shape": list(stats.input_shape),
        "layers": [{
            "name": layer.name, "kind": layer.kind, "inputs": list(layer.inputs),
            "output_shape": list(layer.output_shape), "params": layer.params,
            "trainable_params": layer.trainable_params,
            "non_trainable_params": layer.non_trainable_params, "macs": layer.macs,
            "activation_elems": layer.activation_elems,
            "receptive_field": layer.receptive_field,
        } for layer in stats.layers],
        "total_params": stats.total_params, "trainable_params": stats.trainable_params,
        "non_trainable_params": stats.non_trainable_params, "macs": stats.total_macs,
        "flops": stats.flops, "memory": memory,
    }
    if isinstance(measured, Measurement):
        result["measured"] = measured.to_json()
    elif isinstance(measured, MeasureError):
        result["measured"] = {"error": measured.kind, "message": str(measured)}
    return result


def to_table(stats: ModelStats, gpu_bytes: float | None = None,
             framework: FrameworkEstimate | None = None,
             measured: Measurement | MeasureError | None = None) -> str:
    """A readable table: one row per layer, then totals and the memory terms."""
    m = stats.memory
    act = DTYPES[m.dtype]
    rows = [("#", "layer", "kind", "output", "params", "MACs", "act MB", "RF")]
    for i, layer in enumerate(stats.layers, start=1):
        rows.append((str(i), layer.name, layer.kind, "x".join(map(str, layer.output_shape)),
                     f"{layer.params:,}", f"{layer.macs:,}",
                     f"{layer.activation_elems * act / MB:.2f}",
                     "-" if layer.receptive_field is None else str(layer.receptive_field)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        f"input {'x'.join(map(str, stats.input_shape))}; parameters {stats.total_params:,} "
        f"({stats.trainable_params:,} trainable, {stats.non_trainable_params:,} not); "
        f"MACs {stats.total_macs:,}; FLOPs (2 x MACs) {stats.flops:,}",
        f"parameters: {m.params_bytes / MB:,.2f} MB (float32)",
        f"predict one instance: {m.inference_bytes / MB:,.2f} MB (peak of live activations "
        f"{m.inference_activation_bytes / MB:,.2f} MB + parameters)",
        f"train one batch of {m.batch} ({m.dtype}, {m.optimizer}): "
        f"{m.training_bytes / MB:,.2f} MB =",
    ]
    lines += [f"  {value / MB:12,.2f} MB  {term}: {how}" for term, value, how in
              m.training_terms()]
    if framework is not None:
        lines.append(framework_lines(framework))
    if isinstance(measured, Measurement):
        lines.append(measured_lines(measured, framework, stats))
    if gpu_bytes is not None:
        text = f"largest batch that fits {gpu_bytes / GB:g} GB: "
        textbook = f"{stats.max_batch(gpu_bytes):,}"
        if isinstance(measured, Measurement):
            text += f"{measured.max_batch(gpu_bytes):,} (measured line)"
            if framework is not None:
                text += f"; framework model {framework.max_batch(gpu_bytes):,}"
            text += f"; textbook {textbook}"
        elif framework is not None:
            text += (f"{framework.max_batch(gpu_bytes):,} (framework model); "
                     f"textbook {textbook}")
        else:
            text += textbook
        lines.append(text)
    lines.append("(1 MB = 10^6 bytes; the textbook terms leave out the framework; the "
                 "framework model is fitted to TensorFlow on a CPU)")
    return "\n".join(lines)


def framework_lines(fw: FrameworkEstimate) -> str:
    return (f"framework model (what Keras on TensorFlow keeps): {fw.training_bytes / MB:,.2f} "
            f"MB at batch {fw.micro_batch} = {fw.fixed_bytes / MB:,.2f} MB fixed + "
            f"{fw.per_sample_bytes / MB:,.3f} MB per sample; peak in the {fw.peak.where}")


def measured_lines(me: Measurement, fw: FrameworkEstimate | None, stats: ModelStats) -> str:
    (b1, b2), (p1, p2) = me.batches, me.peaks
    text = (f"measured on {me.device} ({me.backend}), one train_on_batch step: peak "
            f"{p1 / MB:,.2f} MB at batch {b1}, {p2 / MB:,.2f} MB at batch {b2}: "
            f"{me.fixed_bytes / MB:,.2f} MB fixed + {me.per_sample_bytes / MB:,.3f} MB per "
            f"sample ({me.seconds:.1f} s)")
    textbook = stats.at(batch=b2, accum_steps=1).training_bytes
    text += f"\n  at batch {b2}: measured {p2 / MB:,.2f} MB"
    if fw is not None:
        text += f", framework model {fw.at(b2) / MB:,.2f} MB ({fw.at(b2) / p2:.2f}x)"
    text += f", textbook {textbook / MB:,.2f} MB ({textbook / p2:.2f}x)"
    return text


def run(args: argparse.Namespace) -> int:
    try:
        if args.preset is not None and args.preset not in PRESETS:
            raise SpecError(f"--preset: unknown preset {shown(args.preset)}; known: "
                            f"{', '.join(PRESETS)}")
        preset_shape, preset_layers = PRESETS[args.preset] if args.preset else (None, [])
        if args.input is not None:
            input_shape = parse_input_shape(args.input)
        elif preset_shape is not None:
            input_shape = preset_shape
        else:
            raise SpecError("--input: required, e.g. --input 200x300x3 (or --preset NAME)")
        if len(args.layer) > MAX_LAYERS:
            raise LimitError(f"--layer: {len(args.layer):,} layers, more than the calculator's "
                             f"limit of {MAX_LAYERS:,}")
        layers = [parse_layer(text, where_text(f"--layer {i}", text))
                  for i, text in enumerate(args.layer, start=1)] or list(preset_layers)
        if not layers:
            raise SpecError("--layer: give at least one layer, e.g. --layer conv:32:3")
        default_batch = str(PRESET_BATCH[args.preset]) if args.preset else "1"
        batch = _positive_int(args.batch or default_batch, "--batch", MAX_BATCH)
        accum = _positive_int(args.accum, "--accum", MAX_BATCH)
        if args.dtype not in DTYPES:
            raise SpecError(f"--dtype: must be one of {', '.join(DTYPES)}, "
                            f"got {shown(args.dtype)}")
        if args.optimizer not in OPTIMIZER_SLOTS:
            raise SpecError(f"--optimizer: must be one of {', '.join(OPTIMIZER_SLOTS)}, "
                            f"got {shown(args.optimizer)}")
        gpu_bytes = None if args.gpu is None else _gpu_bytes(args.gpu)
        stats = analyze(input_shape, layers, batch=batch, dtype=args.dtype,
                        optimizer=args.optimizer, accum_steps=accum)
    except SpecError as error:
        print(f"calc: {one_line(error, 1000)}", file=sys.stderr)
        return 2
    framework = framework_estimate(input_shape, layers, batch=batch, dtype=args.dtype,
                                   optimizer=args.optimizer, accum_steps=accum, stats=stats)
    measured: Measurement | MeasureError | None = None
    if args.measure:
        try:
            measured = measure(input_shape, layers, batch=batch, dtype=args.dtype,
                               optimizer=args.optimizer, accum_steps=accum)
        except MeasureError as error:  # reported in the output and as one line
            measured = error
            print(f"calc: {one_line(error, 1000)}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(stats, gpu_bytes, framework, measured)))
    else:
        print(to_table(stats, gpu_bytes, framework, measured))
    return 1 if isinstance(measured, MeasureError) else 0
