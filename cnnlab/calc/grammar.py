"""The layer grammar: one text form for the command line, the URL query string, the page's
text box and (through `layers_to_rows` / `rows_to_layers`) the page's layer table.

    KIND[:POSITIONAL...][:KEY=VALUE...]
    e.g. conv:100:3:2:same, conv:256:5:1:same:act=relu:groups=2, maxpool:3:2,
    dense:10:act=softmax, dropout:0.5, lrn:2:alpha=2e-05:beta=0.75, zeropad:1, concat:in=a,b

`FORMS` is the grammar's one table: per kind, the fields it takes by position (in Keras'
argument order), how many of them are required, and its other keywords. The parser, the
formatter and the help text (`GRAMMAR_HELP`: `python -m cnnlab calc --help`, the page's
text box, the README) are all read from it.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cnnlab.calc.analysis import auto_names
from cnnlab.calc.spec import (
    ACTIVATIONS,
    KINDS,
    MAX_LAYERS,
    MAX_SIZE,
    MERGES,
    PADDINGS,
    LayerSpec,
    LimitError,
    SpecError,
    int_pair,
    is_digits,
    layer_where,
    over_limit,
    shown,
)
from cnnlab.ui.safe import one_line


@dataclass(frozen=True)
class Form:
    """How one kind is written: KIND[:POSITIONAL...][:KEY=VALUE...]."""

    positional: tuple[str, ...] = ()  # keywords that may also be given by position, in order
    required: int = 0  # how many of the positional fields must be given
    keywords: tuple[str, ...] = ()  # its keyword-only fields (besides name= and in=)
    metavars: tuple[tuple[str, str], ...] = ()  # (keyword, placeholder) where not VALUES'


_POOL = Form(("kernel", "stride", "padding"), 1, metavars=(("kernel", "SIZE"),))
FORMS: dict[str, Form] = {
    "conv": Form(("filters", "kernel", "stride", "padding"), 2, ("act", "bias", "groups")),
    "maxpool": _POOL,
    "avgpool": _POOL,
    "dense": Form(("units",), 1, ("act", "bias")),
    "flatten": Form(),
    "globalavgpool": Form(),
    "globalmaxpool": Form(),
    "batchnorm": Form(),
    "dropout": Form(("rate",), 1),
    "activation": Form(("act",), 1),
    "lrn": Form(("depth_radius",), 0, ("lrn_bias", "alpha", "beta")),
    "zeropad": Form(("pad",) * 4, 1),  # 1, 2 (vertical, horizontal) or 4 values
    "concat": Form(),
    "add": Form(),
}
COMMON_KEYS = ("name", "in")  # every kind takes these
# The placeholder of each keyword's value in the help text.
VALUES: dict[str, str] = {
    "filters": "FILTERS", "units": "UNITS", "kernel": "KERNEL", "stride": "STRIDE",
    "padding": "PADDING", "rate": "RATE", "act": "NAME", "depth_radius": "DEPTH_RADIUS",
    "pad": "P", "bias": "off", "groups": "G", "lrn_bias": "K", "alpha": "A", "beta": "B",
    "name": "NAME", "in": "A,B",
}
# What a blank field means (build_layer spells these defaults out).
KERAS_DEFAULTS = "conv stride 1, pool stride = pool size, padding valid"
_ALIASES = {"conv2d": "conv", "maxpool2d": "maxpool", "maxpooling2d": "maxpool",
            "avgpool2d": "avgpool", "averagepooling2d": "avgpool", "gap": "globalavgpool",
            "globalaveragepooling2d": "globalavgpool", "batchnormalization": "batchnorm",
            "bn": "batchnorm", "concatenate": "concat", "zeropadding2d": "zeropad"}
_NO_FORM = Form()


def _keys(kind: str) -> tuple[str, ...]:
    """Every keyword `kind` takes besides name= and in=, positional ones first."""
    form = FORMS.get(kind, _NO_FORM)
    return tuple(dict.fromkeys(form.positional)) + form.keywords


def _required(kind: str) -> tuple[str, ...]:
    form = FORMS.get(kind, _NO_FORM)
    return tuple(dict.fromkeys(form.positional[:form.required]))


def where_text(prefix: str, text: object) -> str:
    """How a message names a layer by its text: 'line 3 (dense:x)', on one line, the text
    cut to 60 characters."""
    return f"{prefix} ({one_line(text, 60)})"


def _text_int(value: object, what: str, where: str, *, low: int = 1) -> int:
    """An integer from `low` to MAX_SIZE from 3, 3.0, '3' or a numpy integer; SpecError
    otherwise (one line: past the limit it says the limit)."""
    text = str(value).strip()
    number: int | None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    else:
        try:
            number = int(text)
        except ValueError:  # not an integer, or past Python's 4,300 digits
            number = MAX_SIZE + 1 if is_digits(text) else None
    if number is None or number < low:
        kind = "a positive" if low == 1 else "a non-negative"
        raise SpecError(f"{where}: {what} must be {kind} integer, got {shown(text)}")
    if number > MAX_SIZE:
        raise over_limit(where, what, text, MAX_SIZE)
    return int(number)


def _text_pair(value: object, what: str, where: str) -> tuple[int, int]:
    """'3' -> (3, 3); '3x5' -> (3, 5); also 3, 3.0 and (3, 5)."""
    if isinstance(value, tuple | list):
        parts: list[object] = list(value)
    elif isinstance(value, str):
        parts = [p for p in re.split(r"\s*[x×,]\s*", value.strip().lower())]
    else:
        parts = [value]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise SpecError(f"{where}: {what} must be N or NxM, got {shown(value)}")
    try:
        return (_text_int(parts[0], what, where), _text_int(parts[1], what, where))
    except LimitError:
        raise
    except SpecError:
        raise SpecError(f"{where}: {what} must be N or NxM of positive integers, "
                        f"got {shown(str(value))}") from None


def _text_float(value: object, what: str, where: str) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise SpecError(f"{where}: {what} must be a number, got {shown(str(value))}") from None
    if not math.isfinite(number):
        raise SpecError(f"{where}: {what} must be a finite number, got {shown(str(value))}")
    return number


def _text_bool(value: object, what: str, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    raise SpecError(f"{where}: {what} must be on or off, got {shown(str(value))}")


def _blank(value: object) -> bool:
    """None, '' and NaN (an empty table cell) mean "not given"."""
    return value is None or (isinstance(value, float) and value != value) \
        or (isinstance(value, str) and not value.strip()) \
        or type(value).__name__ == "NAType"  # pandas' missing value, without importing pandas


def build_layer(kind: str, fields: Mapping[str, object], where: str = "layer") -> LayerSpec:
    """A LayerSpec from text-ish fields (keys as in the grammar's keywords), checked.

    Raises SpecError naming `where` and the problem; blank fields are left at defaults.
    """
    raw_kind = str(kind).strip().lower() if not _blank(kind) else ""
    kind = _ALIASES.get(raw_kind, raw_kind) or raw_kind
    if kind not in KINDS:
        raise SpecError(f"{where}: unknown layer kind {shown(raw_kind or '(empty)')}; "
                        f"known: {', '.join(KINDS)}")
    given = {k: v for k, v in fields.items() if not _blank(v)}
    allowed = _keys(kind) + COMMON_KEYS
    for key in given:
        if key not in allowed:
            raise SpecError(f"{where}: {kind} has no option {shown(key)}; "
                            f"it takes {', '.join(allowed)}")
    for key in _required(kind):
        if key not in given:
            raise SpecError(f"{where}: {kind} needs {key}")
    args: dict[str, object] = {"kind": kind}
    for key, value in given.items():
        if key == "name":
            args["name"] = str(value).strip()
        elif key == "in":
            names = value if isinstance(value, tuple | list) else str(value).split(",")
            args["inputs"] = tuple(str(n).strip() for n in names if str(n).strip())
        elif key in ("filters", "units", "groups"):
            args[key] = _text_int(value, key, where)
        elif key == "kernel":
            args["kernel"] = _text_pair(value, "pool size" if "pool" in kind else "kernel", where)
        elif key == "stride":
            args["strides"] = _text_pair(value, "stride", where)
        elif key == "padding":
            padding = str(value).strip().lower()
            if padding not in PADDINGS:
                raise SpecError(f"{where}: padding must be 'valid' or 'same', got {shown(value)}")
            args["padding"] = padding
        elif key == "act":
            act = str(value).strip().lower()
            if act not in ACTIVATIONS:
                raise SpecError(f"{where}: unknown activation {shown(act)}; "
                                f"known: {', '.join(ACTIVATIONS)}")
            args["activation"] = act
        elif key == "bias":
            args["use_bias"] = _text_bool(value, "bias", where)
        elif key == "rate":
            rate = _text_float(value, "dropout rate", where)
            if not 0 <= rate < 1:
                raise SpecError(f"{where}: dropout rate must be in [0, 1), got {shown(value)}")
            args["rate"] = rate
        elif key == "depth_radius":
            args["depth_radius"] = _text_int(value, "depth_radius", where, low=0)
        elif key in ("lrn_bias", "alpha", "beta"):
            number = _text_float(value, key, where)
            if number < 0:
                raise SpecError(f"{where}: {key} must be non-negative, got {shown(value)}")
            args[key] = number
        elif key == "pad":
            parts = value if isinstance(value, tuple | list) else re.split(r"[,x ]+",
                                                                        str(value).strip())
            pads = [_text_int(p, "pad", where, low=0) for p in parts if str(p).strip()]
            if len(pads) == 1:
                pads = pads * 4
            elif len(pads) == 2:  # (vertical, horizontal), as Keras' ZeroPadding2D((a, b))
                pads = [pads[0], pads[0], pads[1], pads[1]]
            if len(pads) != 4:
                raise SpecError(f"{where}: pad must be 1, 2 or 4 non-negative integers, "
                                f"got {shown(value)}")
            args["pad"] = tuple(pads)
    if "stride" in allowed and "strides" not in args:
        # Explicit Keras defaults, so that text -> spec -> text -> spec is stable.
        args["strides"] = (1, 1) if kind == "conv" else args["kernel"]
    return LayerSpec(**args)  # type: ignore[arg-type]


def parse_layer(text: str, where: str | None = None) -> LayerSpec:
    """Parse one layer of the grammar, e.g. ``conv:100:3:2:same`` or ``dense:10:act=softmax``.

    Fields left out take Keras' defaults (KERAS_DEFAULTS).
    """
    where = where or f"layer {shown(text, 60)}"
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: empty layer")
    kind, *parts = [p.strip() for p in text.strip().split(":")]
    kind = _ALIASES.get(kind.lower(), kind.lower()) or kind.lower()
    positional = FORMS.get(kind, _NO_FORM).positional
    fields: dict[str, object] = {}
    position = 0
    for part in parts:
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip().lower()
            if key in fields and key != "pad":
                raise SpecError(f"{where}: {key} is given twice")
            fields[key] = value
            continue
        if position >= len(positional):
            if kind not in KINDS:
                break  # reported as an unknown kind below
            raise SpecError(f"{where}: too many fields for {kind} (it takes "
                            f"{':'.join(dict.fromkeys(positional)) or 'none'})")
        key = positional[position]
        position += 1
        if key == "pad":
            fields["pad"] = f"{fields['pad']},{part}" if "pad" in fields else part
        else:
            fields[key] = part
    return build_layer(kind, fields, where)


def pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _num_text(number: float) -> str:
    return repr(int(number)) if float(number).is_integer() else repr(float(number))


def layer_fields(spec: LayerSpec) -> dict[str, str]:
    """The grammar keywords of `spec` whose values differ from the defaults (strings)."""
    fields: dict[str, str] = {}
    default = LayerSpec(spec.kind)
    kind = spec.kind
    keys = _keys(kind)
    if "filters" in keys:
        fields["filters"] = str(spec.filters)
    if "units" in keys:
        fields["units"] = str(spec.units)
    if "kernel" in keys:
        kernel = int_pair(spec.kernel, "kernel", "layer")
        fields["kernel"] = pair_text(kernel)
        default_stride = (1, 1) if kind == "conv" else kernel
        if spec.strides is not None and tuple(spec.strides) != default_stride:
            fields["stride"] = pair_text(tuple(spec.strides))  # type: ignore[arg-type]
        if spec.padding != "valid":
            if "stride" not in fields:  # so padding can stay positional: conv:64:3:1:same
                fields["stride"] = pair_text(default_stride)
            fields["padding"] = spec.padding
    if "act" in keys and spec.activation:
        fields["act"] = spec.activation
    if "bias" in keys and not spec.use_bias:
        fields["bias"] = "off"
    if "groups" in keys and spec.groups != 1:
        fields["groups"] = str(spec.groups)
    if "rate" in keys:
        fields["rate"] = _num_text(spec.rate)
    for key in ("depth_radius", "lrn_bias", "alpha", "beta"):
        if key in keys and getattr(spec, key) != getattr(default, key):
            fields[key] = _num_text(getattr(spec, key))
    if "pad" in keys:
        fields["pad"] = ",".join(map(str, spec.pad))
    if spec.name:
        fields["name"] = spec.name
    if spec.inputs:
        fields["in"] = ",".join(spec.inputs)
    return fields


def format_layer(spec: LayerSpec) -> str:
    """The grammar text of `spec`; `parse_layer(format_layer(s)) == s`."""
    fields = layer_fields(spec)
    parts = [spec.kind]
    positional = list(dict.fromkeys(FORMS.get(spec.kind, _NO_FORM).positional))
    # Positional while there is no gap; conv and pools may skip stride with padding=.
    for key in positional:
        if key not in fields or key == "pad":
            break
        parts.append(fields.pop(key))
    parts += [f"{key}={value}" for key, value in fields.items()]
    return ":".join(parts)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'200x300x3' -> (200, 300, 3); 'HxW' means one channel."""
    parts = re.split(r"\s*[x×,]\s*", str(text).strip().lower())
    if len(parts) == 2:
        parts.append("1")
    if len(parts) != 3:
        raise SpecError(f"input: {shown(text)} must be HxWxC, e.g. 200x300x3")
    try:
        return tuple(_text_int(p, "every size", f"input {shown(text)}")  # type: ignore
                     for p in parts)
    except LimitError:
        raise over_limit("input", "each size", text, MAX_SIZE) from None


def parse_layers_text(text: str) -> list[LayerSpec]:
    """The layers of a text, one per line (blank lines and # comments skipped); a bad line
    raises SpecError naming it: 'line 3 (dense:x): units must be ...'."""
    lines = [line.strip() for line in str(text).splitlines()]
    numbered = [(i, line) for i, line in enumerate(lines, start=1)
                if line and not line.startswith("#")]
    if len(numbered) > MAX_LAYERS:
        raise LimitError(f"text: {len(numbered):,} layers, more than the calculator's limit of "
                         f"{MAX_LAYERS:,}")
    layers = [parse_layer(line, where_text(f"line {i}", line)) for i, line in numbered]
    if not layers:
        raise SpecError("text: give at least one layer, one per line")
    return layers


def format_layers_text(layers: Iterable[LayerSpec]) -> str:
    """One layer per line; `parse_layers_text` reads it back."""
    return "\n".join(format_layer(spec) for spec in layers)


# ----------------------------------------------------------------------------- help


def layer_usage(kind: str) -> str:
    """How `kind` is written, from FORMS: 'conv:FILTERS:KERNEL[:STRIDE[:PADDING]]'."""
    form = FORMS[kind]
    metavars = VALUES | dict(form.metavars)
    words = [metavars[key] for key in dict.fromkeys(form.positional)]
    required = len(_required(kind))
    optional = words[required:]
    text = kind + "".join(f":{word}" for word in words[:required])
    text += "".join(f"[:{word}" for word in optional) + "]" * len(optional)
    if kind in MERGES:
        text += f":in={VALUES['in']}"
    return text


def _keyword_usage() -> str:
    """'act=NAME (conv, dense), ...': each keyword-only field and the kinds that take it."""
    kinds: dict[str, list[str]] = {}
    for kind, form in FORMS.items():
        for key in form.keywords:
            kinds.setdefault(key, []).append(kind)
    return ", ".join([f"{key}={VALUES[key]} ({', '.join(names)})" for key, names in kinds.items()]
                     + [f"{key}={VALUES[key]}" for key in COMMON_KEYS])


def _wrap(text: str, width: int = 88) -> str:
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


# The grammar for people: `python -m cnnlab calc --help`, the page's text box, the README.
GRAMMAR_HELP = "\n\n".join(_wrap(paragraph) for paragraph in (
    f"KIND[:POSITIONAL...][:KEY=VALUE...], one layer each; fields left out take Keras' "
    f"defaults ({KERAS_DEFAULTS}).",
    ", ".join(layer_usage(kind) for kind in KINDS),
    "KERNEL, SIZE and STRIDE are N or NxM; P is N, V:H or T:B:L:R. Any field can also be "
    f"given as KEY=VALUE; keyword-only fields: {_keyword_usage()}.",
))


# ----------------------------------------------------------------------------- table form

TABLE_COLUMNS: tuple[str, ...] = ("name", "kind", "filters/units", "kernel", "stride",
                                  "padding", "activation", "rate", "inputs", "options")
_OPTION_KEYS = ("groups", "bias", "depth_radius", "lrn_bias", "alpha", "beta", "pad")


def layers_to_rows(layers: Iterable[LayerSpec]) -> list[dict[str, object]]:
    """Rows for the page's layer table (one dict per layer, keys TABLE_COLUMNS)."""
    rows = []
    for spec in layers:
        fields = layer_fields(spec)
        keys = _keys(spec.kind)
        size = fields.get("filters") or fields.get("units")
        options = " ".join(f"{k}={fields[k]}" for k in _OPTION_KEYS if k in fields)
        rows.append({
            "name": spec.name or None,
            "kind": spec.kind,
            "filters/units": int(size) if size else None,
            "kernel": fields.get("kernel"),
            "stride": fields.get("stride"),
            "padding": spec.padding if "padding" in keys else None,
            "activation": fields.get("act"),
            "rate": spec.rate if "rate" in keys else None,
            "inputs": ", ".join(spec.inputs) if spec.inputs else None,
            "options": options or None,
        })
    return rows


def rows_to_layers(rows: Iterable[Mapping[str, object]]) -> list[LayerSpec]:
    """LayerSpecs from table rows; cells a kind does not use are ignored.

    Raises SpecError naming the row ("layer 3 (conv2): ...") for a bad cell, or if no row
    is left: rows whose every cell is blank (a fresh row of the editor) are skipped.
    """
    filled = [row for row in rows if not all(_blank(v) for v in row.values())]
    if not filled:
        raise SpecError("the network has no layers: add a row")
    if len(filled) > MAX_LAYERS:
        raise LimitError(f"the network has {len(filled):,} layers, more than the calculator's "
                         f"limit of {MAX_LAYERS:,}")
    kinds = []
    for row in filled:
        raw_kind = row.get("kind")
        kind = "" if _blank(raw_kind) else str(raw_kind).strip().lower()
        kinds.append(_ALIASES.get(kind, kind))
    # The names analyze() will give, so that a message names the row as the results do.
    auto = auto_names([LayerSpec(kind or "layer", "" if _blank(row.get("name"))
                                  else str(row.get("name")).strip())
                        for kind, row in zip(kinds, filled, strict=True)])
    layers = []
    for row, kind, shown_name in zip(filled, kinds, auto, strict=True):
        name = row.get("name")
        # An unknown kind has no automatic name: then only an explicit one is shown.
        where = layer_where(len(layers) + 1,
                            shown_name if kind in KINDS or not _blank(name) else "")
        keys = _keys(kind)
        fields: dict[str, object] = {"name": name, "in": row.get("inputs")}
        size = row.get("filters/units")
        if "filters" in keys:
            fields["filters"] = size
        if "units" in keys:
            fields["units"] = size
        for column, key in (("kernel", "kernel"), ("stride", "stride"), ("padding", "padding"),
                            ("activation", "act"), ("rate", "rate")):
            if key in keys:
                fields[key] = row.get(column)
        options = row.get("options")
        if not _blank(options):
            for item in str(options).replace(";", " ").split():
                key, sep, value = item.partition("=")
                if not sep:
                    raise SpecError(f"{where}: option {shown(item)} must look like key=value")
                fields[key.strip().lower()] = value
        layers.append(build_layer(kind, fields, where))
    return layers
