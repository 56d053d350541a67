"""What the Architectures page shows about a network, computed from its spec: the overview
table, a stage's layers and totals, per-block summaries for the diagram, parameter sums, and
the two blocks a user sizes (an inception module, a residual unit).

Pure Python (the calculator); pages only format these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.spec import INPUT_NAME, LayerSpec, SpecError
from cnnlab.nets.builders import (
    all_networks,
    inception_module,
    needs_projection,
    residual_unit,
    shortcut_layers,
)
from cnnlab.nets.network import Network

MB = 10**6


def overview(networks: list[Network] | None = None) -> list[dict]:
    """One row per network: the paper's facts next to the calculator's numbers."""
    rows = []
    for net in networks or all_networks():
        stats = net.stats()
        rows.append({
            "network": net.title,
            "year": net.paper.year,
            "depth": net.depth,
            "input": "x".join(map(str, net.input_shape)),
            "parameters": stats.total_params,
            "GFLOPs": round(stats.flops / 1e9, 4),  # 2 x multiply-adds
            "G mult-adds": round(stats.total_macs / 1e9, 4),  # what the papers call FLOPs
            # every layer's output for one image, float32: what training keeps for backprop
            "activations MB/image": round(4 * stats.activation_elems / MB, 2),
            "top-5 % (1 model)": net.paper.single_top5_error,
            "top-5 % (ILSVRC)": net.paper.top5_error,
        })
    return rows


def describe(spec: LayerSpec) -> str:
    """The layer's settings in the field's words, e.g. "64 x 7x7 /2 same, relu"."""
    k = "x".join(map(str, spec.kernel))
    stride = spec.strides or ((1, 1) if spec.kind == "conv" else spec.kernel)
    s = f" /{stride[0]}" if stride[0] != 1 else ""
    if spec.kind == "conv":
        groups = f", {spec.groups} groups" if spec.groups > 1 else ""
        act = f", {spec.activation}" if spec.activation else ""
        bias = "" if spec.use_bias else ", no bias"
        return f"{spec.filters} x {k}{s} {spec.padding}{groups}{act}{bias}"
    if spec.kind in ("maxpool", "avgpool"):
        return f"{k}{s} {spec.padding}"
    if spec.kind == "dense":
        return f"{spec.units} units" + (f", {spec.activation}" if spec.activation else "")
    if spec.kind == "dropout":
        return f"rate {spec.rate}"
    if spec.kind == "activation":
        return spec.activation or ""
    if spec.kind == "lrn":
        return (f"depth_radius {spec.depth_radius}, bias {spec.lrn_bias:g}, alpha {spec.alpha:g}, "
                f"beta {spec.beta:g}")
    if spec.kind == "zeropad":
        return "pad " + ",".join(map(str, spec.pad))
    if spec.kind in ("concat", "add"):
        return " + ".join(spec.inputs)
    return ""


def stage_table(net: Network, stage: str) -> list[dict]:
    """The layers of one stage: what each does, its output shape, parameters and MACs."""
    if stage not in net.stages():
        raise SpecError(f"{net.title} has no stage {stage!r}; stages: {', '.join(net.stages())}")
    stats = {s.name: s for s in net.stats().layers}
    specs = {s.name: s for s in net.layers}
    block_of = {name: b.name for b in net.blocks for name in b.layers}
    return [{
        "block": block_of[name],
        "layer": name,
        "kind": specs[name].kind,
        "settings": describe(specs[name]),
        "output shape": " x ".join(map(str, stats[name].output_shape)),
        "parameters": stats[name].params,
        "MMACs": round(stats[name].macs / 1e6, 2),
    } for name in net.stage_layers(stage)]


@dataclass(frozen=True)
class StageTotals:
    layers: int
    params: int
    macs: int


def stage_totals(net: Network, stage: str) -> StageTotals:
    """How many layers one stage has, and their parameters and multiply-adds."""
    names = set(net.stage_layers(stage))
    if not names:
        raise SpecError(f"{net.title} has no stage {stage!r}; stages: {', '.join(net.stages())}")
    layers = [s for s in net.stats().layers if s.name in names]
    return StageTotals(len(layers), sum(s.params for s in layers), sum(s.macs for s in layers))


@dataclass(frozen=True)
class BlockSummary:
    name: str
    stage: str
    kind: str
    label: str                       # short text for the box
    output_shape: tuple[int, ...]
    params: int
    macs: int
    shortcut: str | None
    shortcut_params: int             # the projection's conv + BN (0 for identity)
    branches: tuple[tuple[str, int], ...]  # inception: (branch, channels) in concat order


def block_summaries(net: Network) -> list[BlockSummary]:
    """Per block: its output, parameters, MACs, shortcut and inception branches, from the stats."""
    stats = {s.name: s for s in net.stats().layers}
    summaries = []
    for block in net.blocks:
        last = block.layers[-1]
        branches: tuple[tuple[str, int], ...] = ()
        if block.kind == "inception":
            concat = next(s for s in net.layers if s.name == last)
            branches = tuple((name.rsplit("_", 1)[-1] if not name.endswith("pool_proj")
                              else "pool", stats[name].output_shape[-1])
                             for name in concat.inputs)
        label = block.name
        if block.kind == "inception":
            label = block.name.removeprefix("inception_")
        elif block.kind == "residual":
            label = block.name.rsplit("block", 1)[-1]
        elif block.kind == "aux":
            label = "aux"
        projection = set(shortcut_layers(block.name)) if block.kind == "residual" else set()
        summaries.append(BlockSummary(
            name=block.name, stage=block.stage, kind=block.kind, label=label,
            output_shape=stats[last].output_shape,
            params=sum(stats[n].params for n in block.layers),
            macs=sum(stats[n].macs for n in block.layers),
            shortcut=block.shortcut,
            shortcut_params=sum(stats[n].params for n in block.layers if n in projection),
            branches=branches,
        ))
    return summaries


def params_of(net: Network, kind: str | None = None, names: tuple[str, ...] = ()) -> int:
    """Parameters of the layers of one kind ("dense", "batchnorm") and/or with these names."""
    return sum(s.params for s in net.stats().layers
               if (kind is None or s.kind == kind) and (not names or s.name in names))


def layer_rows(stats: ModelStats, kinds: bool = False) -> list[dict]:
    """One row per layer of a block the user sized: name (kind), output shape, parameters and
    M mult-adds."""
    return [{"layer": s.name, **({"kind": s.kind} if kinds else {}),
             "output shape": " x ".join(map(str, s.output_shape)), "parameters": s.params,
             "M mult-adds": round(s.macs / 1e6, 2)} for s in stats.layers]


@dataclass(frozen=True)
class InceptionComparison:
    """One inception module with its 1x1 bottlenecks and the naive module (Fig. 2a) of the
    same sizes, on the same input."""

    bottleneck: ModelStats
    naive: ModelStats

    @property
    def params_vs_naive(self) -> int:
        """The bottlenecked module's parameters minus the naive one's (negative: saved)."""
        return self.bottleneck.total_params - self.naive.total_params

    @property
    def flops_ratio(self) -> float:
        """The naive module's FLOPs over the bottlenecked one's."""
        return self.naive.flops / max(self.bottleneck.flops, 1)


def compare_inception(input_shape: tuple[int, int, int],
                      filters: tuple[int, int, int, int, int, int] | list[int]
                      ) -> InceptionComparison:
    """`filters`: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (raises SpecError)."""
    return InceptionComparison(
        analyze(input_shape, inception_module("m", INPUT_NAME, *filters)),
        analyze(input_shape, inception_module("m", INPUT_NAME, *filters, bottleneck=False)))


@dataclass(frozen=True)
class ResidualUnitSummary:
    stats: ModelStats
    shortcut: str           # "identity" or "projection"
    shortcut_params: int    # the projection's 1x1 conv + BN; 0 for the identity


UNIT = "unit"  # the layer-name prefix of a standalone residual unit


def residual_unit_summary(input_shape: tuple[int, int, int], filters: int, *, stride: int = 1,
                          bottleneck: bool = True) -> ResidualUnitSummary:
    """One residual unit on `input_shape` (raises SpecError): its stats and its shortcut."""
    channels = input_shape[-1]
    stats = analyze(input_shape, residual_unit(UNIT, INPUT_NAME, channels, filters,
                                               stride=stride, bottleneck=bottleneck))
    projection = needs_projection(channels, filters, stride, bottleneck)
    names = set(shortcut_layers(UNIT))
    return ResidualUnitSummary(
        stats, "projection" if projection else "identity",
        sum(s.params for s in stats.layers if s.name in names))
