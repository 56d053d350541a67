"""A network as the calculator sees it: layers (a DAG of `calc.LayerSpec`), their grouping
into blocks and stages, and the paper it comes from.

The calculator computes parameters, FLOPs and memory from `Network.layers`;
`calc.keras_oracle.to_keras` builds the Keras model from the same list. Pure Python: Keras is
imported only when `Network.keras_model()` builds one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cnnlab.calc.analysis import ModelStats, analyze
from cnnlab.calc.keras_oracle import to_keras
from cnnlab.calc.spec import INPUT_NAME, LayerSpec
from cnnlab.facts import Fact, Source

WEIGHT_KINDS = ("conv", "dense")


@dataclass(frozen=True)
class Block:
    """A group of layers the diagram draws as one box (a stem, a module, a residual unit)."""

    name: str
    stage: str
    kind: str  # "stem" | "conv" | "dense" | "inception" | "residual" | "pool" | "head" | "aux"
    layers: tuple[str, ...]
    shortcut: str | None = None  # residual units: "identity" or "projection"


@dataclass(frozen=True)
class Paper:
    """The paper a network comes from, and its published top-5 errors (cnnlab.facts)."""

    source: Source
    # single model, 10 crops, ILSVRC-2012 validation: the comparable column
    single: Fact | None = None
    # the headline ILSVRC entry (an ensemble, on the test set)
    ilsvrc: Fact | None = None

    @property
    def year(self) -> int:
        return self.source.year

    @property
    def title(self) -> str:
        return f"{self.source.authors}, {self.source.title}"

    @property
    def top5_error(self) -> float | None:
        """The ILSVRC entry's top-5 error, %."""
        return self.ilsvrc.value if self.ilsvrc else None

    @property
    def single_top5_error(self) -> float | None:
        """One model's top-5 error (10 crops, ILSVRC-2012 validation), %."""
        return self.single.value if self.single else None

    def top5_facts(self) -> list[Fact]:
        return [f for f in (self.single, self.ilsvrc) if f is not None]


@dataclass(frozen=True)
class Network:
    key: str
    title: str
    input_shape: tuple[int, int, int]
    layers: tuple[LayerSpec, ...]
    blocks: tuple[Block, ...]
    paper: Paper
    notes: tuple[str, ...] = field(default=())  # deviations from the paper, stated on the page

    def stats(self) -> ModelStats:
        """Parameters, shapes, MACs and memory from the calculator (pure Python)."""
        return _stats(self)

    def keras_model(self):
        """The Keras model built from the same specification (no weights)."""
        return to_keras(self.input_shape, list(self.layers))

    @property
    def depth(self) -> int:
        """Weight layers (conv, dense) on the longest path from input to output."""
        return weight_depth(self.layers)

    def stages(self) -> list[str]:
        return list(dict.fromkeys(block.stage for block in self.blocks))

    def stage_layers(self, stage: str) -> list[str]:
        return [name for b in self.blocks if b.stage == stage for name in b.layers]


@functools.lru_cache(maxsize=32)
def _stats(network: Network) -> ModelStats:
    return analyze(network.input_shape, network.layers)


def weight_depth(layers: tuple[LayerSpec, ...] | list[LayerSpec]) -> int:
    """Longest path counted in conv/dense layers: the "depth" papers quote (AlexNet 8, ResNet-50 50)."""
    depth: dict[str, int] = {INPUT_NAME: 0}
    previous = INPUT_NAME
    for spec in layers:
        sources = spec.inputs or (previous,)
        depth[spec.name] = max(depth[s] for s in sources) + (spec.kind in WEIGHT_KINDS)
        previous = spec.name
    return depth[previous]


class SpecBuilder:
    """Collects layers and the block each belongs to while a network builder runs."""

    def __init__(self) -> None:
        self.layers: list[LayerSpec] = []
        self.blocks: list[Block] = []
        self._open: dict | None = None

    @property
    def last(self) -> str:
        return self.layers[-1].name if self.layers else INPUT_NAME

    def add(self, kind: str, name: str, *inputs: str, **fields) -> str:
        if not name:
            raise ValueError("every architecture layer is named")
        self.layers.append(LayerSpec(kind=kind, name=name, inputs=tuple(inputs), **fields))
        if self._open is not None:
            self._open["layers"].append(name)
        return name

    def extend(self, layers: list[LayerSpec]) -> str:
        for spec in layers:
            self.layers.append(spec)
            if self._open is not None:
                self._open["layers"].append(spec.name)
        return self.last

    @contextmanager
    def block(self, name: str, stage: str, kind: str) -> Iterator[dict]:
        self._open = {"name": name, "stage": stage, "kind": kind, "layers": [], "shortcut": None}
        try:
            yield self._open
        finally:
            b = self._open
            self.blocks.append(Block(b["name"], b["stage"], b["kind"], tuple(b["layers"]),
                                     b["shortcut"]))
            self._open = None
