"""The Architectures page as a lecture: a sequence of steps, and the numbers that grow step by
step (an inception module assembled branch by branch, a residual unit before and after its
shortcut).

Pure Python (the calculator). A step's number is what the URL carries
(`architectures?step=8`), so a lecture plan is a list of bookmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.calc.analysis import analyze
from cnnlab.calc.spec import INPUT_NAME
from cnnlab.nets.builders import inception_module
from cnnlab.nets.summary import UNIT, residual_unit_summary
from cnnlab.walk import Walk


@dataclass(frozen=True)
class Step:
    number: int          # 1-based, as in the URL
    section: str         # overview | network | diagram | inception | residual | experiment
    part: str            # which network, branch count, shortcut or experiment
    title: str


NETWORK_STEPS = (("lenet5", "LeNet-5 (1998): convolutions, trained end to end"),
                 ("alexnet", "AlexNet (2012): big, deep, ReLU, dropout, GPUs"),
                 ("googlenet", "GoogLeNet (2014): inception modules, 1x1 bottlenecks"),
                 ("resnet", "ResNet (2015): residual units, 152 layers"))
# The inception module assembled branch by branch, then concatenated (Szegedy et al. 2014,
# Fig. 2b): each entry is (part, title).
INCEPTION_STEPS = (("1", "Inception module: the 1x1 branch"),
                   ("2", "Inception module: + 3x3 reduce → 3x3"),
                   ("3", "Inception module: + 5x5 reduce → 5x5"),
                   ("4", "Inception module: + 3x3 max pool → 1x1 projection"),
                   ("concat", "Inception module: concatenate the four branches"))
RESIDUAL_STEPS = (("f", "Residual unit: the residual branch F(x)"),
                  ("identity", "Residual unit: + the identity shortcut, y = F(x) + x"),
                  ("projection", "Residual unit: + a projection shortcut when shapes differ"))
EXPERIMENT_STEPS = (("1", "Experiment 1: CNN vs dense net"),
                    ("2", "Experiment 2: max pooling vs a strided convolution"),
                    ("3", "Experiment 3: Local Response Normalization"))


def _steps() -> tuple[Step, ...]:
    parts = [("overview", "all", "Four networks that shaped image classification")]
    parts += [("network", key, title) for key, title in NETWORK_STEPS]
    parts += [("diagram", "", "Block diagram: one network, stage by stage")]
    parts += [("inception", part, title) for part, title in INCEPTION_STEPS]
    parts += [("residual", part, title) for part, title in RESIDUAL_STEPS]
    parts += [("experiment", part, title) for part, title in EXPERIMENT_STEPS]
    return tuple(Step(i, *p) for i, p in enumerate(parts, start=1))


STEPS = _steps()
FIRST, LAST = 1, len(STEPS)


WALK = Walk(STEPS)
step, title = WALK.step, WALK.title


def following(number: int) -> int:
    """The next step's number (the last stays the last)."""
    return min(number + 1, LAST)


def preceding(number: int) -> int:
    """The previous step's number (the first stays the first)."""
    return max(number - 1, FIRST)


def first_of(section: str) -> Step:
    return next(s for s in STEPS if s.section == section)


# ---------------------------------------------------------------------- inception, built up

BRANCHES = ("1x1", "3x3", "5x5", "pool")
# the layers of each branch, with and without the 1x1 reduces (builders.inception_module)
_BRANCH_LAYERS = {"1x1": (("_1x1",), ("_1x1",)),
                  "3x3": (("_3x3_reduce", "_3x3"), ("_3x3",)),
                  "5x5": (("_5x5_reduce", "_5x5"), ("_5x5",)),
                  "pool": (("_pool", "_pool_proj"), ("_pool",))}


@dataclass(frozen=True)
class BranchTotals:
    """The module after its first `len(branches)` branches, with the 1x1 reduces (as
    GoogLeNet) and without (the naive module of Fig. 2a)."""

    branches: tuple[str, ...]
    params: int
    naive_params: int
    macs: int
    naive_macs: int
    channels: int          # output channels of the concatenation so far
    naive_channels: int
    branch_params: int     # what the newest branch added, with reduces
    branch_naive_params: int


def inception_build_up(input_shape: tuple[int, int, int],
                       filters: tuple[int, ...] | list[int]) -> list[BranchTotals]:
    """The module of `filters` (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) on
    `input_shape`, one branch at a time: the totals after 1, 2, 3 and 4 branches (the
    concatenation adds no parameters, so the last is the whole module). Raises SpecError."""
    full = {s.name: s for s in analyze(input_shape, inception_module(
        "m", INPUT_NAME, *filters)).layers}
    naive = {s.name: s for s in analyze(input_shape, inception_module(
        "m", INPUT_NAME, *filters, bottleneck=False)).layers}
    totals: list[BranchTotals] = []
    params = naive_params = macs = naive_macs = channels = naive_channels = 0
    for i, branch in enumerate(BRANCHES):
        with_reduce, without = _BRANCH_LAYERS[branch]
        added = sum(full["m" + n].params for n in with_reduce)
        added_naive = sum(naive["m" + n].params for n in without)
        params += added
        naive_params += added_naive
        macs += sum(full["m" + n].macs for n in with_reduce)
        naive_macs += sum(naive["m" + n].macs for n in without)
        channels += full["m" + with_reduce[-1]].output_shape[-1]
        naive_channels += naive["m" + without[-1]].output_shape[-1]
        totals.append(BranchTotals(BRANCHES[:i + 1], params, naive_params, macs, naive_macs,
                                   channels, naive_channels, added, added_naive))
    return totals


# ---------------------------------------------------------------------- residual, built up


@dataclass(frozen=True)
class ResidualBuildUp:
    """A residual unit in three steps: F(x) alone, + the identity shortcut (when the shapes
    match), + a projection shortcut (when they do not: a stride or other channels)."""

    input_shape: tuple[int, int, int]
    output_shape: tuple[int, ...]
    residual_params: int          # F(x): the convolutions and batch norms
    residual_macs: int
    shortcut: str                 # what these sizes need: "identity" or "projection"
    identity_input: tuple[int, int, int]   # an input these filters pass through unchanged
    projection_params: int        # 1x1 conv + BN of these sizes, at stride 2 if no stride
    projection_stride: int


def residual_build_up(input_shape: tuple[int, int, int], filters: int, *, stride: int = 1,
                      bottleneck: bool = True) -> ResidualBuildUp:
    """Raises SpecError for sizes the calculator refuses."""
    unit = residual_unit_summary(input_shape, filters, stride=stride, bottleneck=bottleneck)
    out_channels = 4 * filters if bottleneck else filters
    projection = unit if unit.shortcut == "projection" else residual_unit_summary(
        input_shape, filters, stride=2, bottleneck=bottleneck)
    shortcut_macs = sum(s.macs for s in unit.stats.layers if s.name.startswith(f"{UNIT}_0_"))
    return ResidualBuildUp(
        input_shape=input_shape, output_shape=unit.stats.output_shape,
        residual_params=unit.stats.total_params - unit.shortcut_params,
        residual_macs=unit.stats.total_macs - shortcut_macs,
        shortcut=unit.shortcut,
        identity_input=(input_shape[0], input_shape[1], out_channels),
        projection_params=projection.shortcut_params,
        projection_stride=stride if unit.shortcut == "projection" else 2)
