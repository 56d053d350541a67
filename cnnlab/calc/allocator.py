"""TensorFlow's BFC allocator, simulated: the bytes its `peak` statistic counts for a sequence
of allocations and frees.

On a CPU with oneDNN (TF_ENABLE_ONEDNN_OPTS=1) TensorFlow's allocator is `MklCPUAllocator`
(tensorflow/core/common_runtime/mkl_cpu_allocator.h): a request under 256 KiB
(`kSmallAllocationsThreshold`) goes to a small-size allocator that the measurement does not
see, a larger one to a `BFCAllocator` (tensorflow/core/common_runtime/bfc_allocator.cc) with
`allow_growth`. Its rules, as `BFC` replays them:

- `RoundedBytes`: a request is rounded up to a multiple of 256 bytes (kMinAllocationSize).
- `FindChunkPtr`: the best fit: the free chunks sit in bins by size (powers of two, sorted by
  size then address inside a bin) and the search starts at the request's bin, so it takes
  the smallest free chunk that is large enough, the lowest address on a tie.
- `FindChunkPtr`, the split rule: the chunk is split in two (the request, and the rest as a
  new free chunk after it) only when it is at least twice the rounded request or the rest
  is at least 128 MiB (`max_internal_fragmentation_bytes`' default); otherwise the whole
  chunk is handed over, and `bytes_in_use` grows by the whole chunk.
- `Extend`: when no free chunk fits, a new region is allocated: `curr_region_allocation_bytes_`
  (2 MiB at first under allow_growth) doubled until it holds the request; when it did not
  have to grow, it is doubled after (so each region is at least twice the last). The region
  is one free chunk, then split as above. Regions are never given back (only on a failed
  allocation, which a measurement does not reach), and chunks of different regions never
  merge.
- `DeallocateRawInternal` / `TryToCoalesce`: a freed chunk merges with its free neighbours
  in its region.
- `stats_.bytes_in_use` is the sum of the chunks in use (whole chunks, not the requests),
  `peak_bytes_in_use` its maximum; `reset_memory_stats` sets the peak to the bytes in use.
  `get_memory_info(...)["peak"]` reports that peak.

New regions come at lower addresses (the sub-allocator's mmap; seen in the traces), which
only decides ties between free chunks of one size. Checked against the profiler's traces
(every event's requested and allocated bytes, bench/memory_trace.py; eleven traces from
the model's build to the end of the measured step, LeNet-5 to AlexNet, float32 and
mixed_float16): replayed request by request, `BFC` gives every chunk's size and the peak
exactly (tests/test_allocator.py keeps one of them).

`measurement_events` turns the framework model's step (framework_memory.step_moments'
events) into the sequence a measurement runs, `measured_peaks` replays it: the simulated
peak is the framework model's `training_bytes`.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Sequence

from cnnlab.calc.analysis import analyze, resolve
from cnnlab.calc.memory import OPTIMIZER_SLOTS, PARAM_BYTES

MIN_ALLOCATION = 256  # kMinAllocationSize (kMinAllocationBits = 8)
SMALL_ALLOCATION = 256 << 10  # MklCPUAllocator::kSmallAllocationsThreshold: not the BFC's
FIRST_REGION = 2 << 20  # allow_growth: "2MiB smallest initial allocation"
MAX_INTERNAL_FRAGMENTATION = 128 << 20  # split anyway when this much would be wasted
_REGION_SPACING = 1 << 50  # address distance between regions in the simulation


def rounded_bytes(n: int) -> int:
    """BFCAllocator::RoundedBytes: up to a multiple of 256 bytes."""
    return -(-n // MIN_ALLOCATION) * MIN_ALLOCATION


class BFC:
    """A BFC allocator with allow_growth, reduced to the bookkeeping of chunk sizes.

    `allocate(key, n)` and `free(key)` replay a tensor's life, `rename(key, new)` hands a
    buffer on; `bytes_in_use` and `peak_bytes_in_use` are the statistics `get_memory_info`
    reports, `reset_peak()` is `reset_memory_stats`. Requests under `small` bytes go to
    another allocator (the CPU's: MklCPUAllocator's small-size one, which the measurement
    does not count) and are ignored; 0: every request is the BFC's, as on a GPU."""

    def __init__(self, small: int = SMALL_ALLOCATION) -> None:
        self.small = small
        self.region_bytes = FIRST_REGION  # curr_region_allocation_bytes_
        self.regions: list[int] = []  # their sizes, in the order allocated
        # Chunks tile their regions: address -> [size, in use]; `prev` links each to the
        # chunk before it in its region (None: the region's first). The free ones are also
        # in `free_list`, sorted by (size, address): the bins' order, so the best fit is the
        # first one large enough.
        self.chunks: dict[int, list] = {}
        self.prev: dict[int, int | None] = {}
        self.free_list: list[tuple[int, int]] = []
        self.live: dict[object, int] = {}  # key -> its chunk's address
        self.bytes_in_use = 0
        self.peak_bytes_in_use = 0

    def allocate(self, key: object, n: int) -> int:
        """Allocate `n` bytes for `key`; returns the chunk's size (0: not the BFC's)."""
        if n <= 0 or n < self.small:
            return 0
        rounded = rounded_bytes(int(n))
        addr = self._find(rounded)
        if addr is None:
            self._extend(rounded)
            addr = self._find(rounded)
        chunk = self.chunks[addr]
        chunk[1] = True
        self.live[key] = addr
        self.bytes_in_use += chunk[0]
        self.peak_bytes_in_use = max(self.peak_bytes_in_use, self.bytes_in_use)
        return chunk[0]

    def free(self, key: object) -> None:
        """Free `key`'s chunk and merge it with its free neighbours (TryToCoalesce: the
        next one, then the previous one)."""
        addr = self.live.pop(key, None)
        if addr is None:
            return  # never the BFC's (a small request)
        chunk = self.chunks[addr]
        chunk[1] = False
        self.bytes_in_use -= chunk[0]
        nxt = addr + chunk[0]
        if nxt in self.chunks and not self.chunks[nxt][1]:
            self._unlist(nxt)
            self._merge(addr, nxt)
        before = self.prev[addr]
        if before is not None and not self.chunks[before][1]:
            self._unlist(before)
            self._merge(before, addr)
            addr = before
        self._list(addr)

    def rename(self, key: object, new: object) -> None:
        """A buffer handed on under another name (an add's gradient, one written in place)."""
        if key in self.live:
            self.live[new] = self.live.pop(key)

    def reset_peak(self) -> None:
        """reset_memory_stats: the peak starts again from the bytes in use."""
        self.peak_bytes_in_use = self.bytes_in_use

    def _find(self, rounded: int) -> int | None:
        """FindChunkPtr: the smallest free chunk that holds `rounded` (the lowest address on
        a tie), split when it is at least twice the request or would waste 128 MiB."""
        k = bisect.bisect_left(self.free_list, (rounded, -1))
        if k == len(self.free_list):
            return None
        size, addr = self.free_list.pop(k)
        if size >= 2 * rounded or size - rounded >= MAX_INTERNAL_FRAGMENTATION:
            rest = addr + rounded  # SplitChunk: the rest, a free chunk after it
            self.chunks[addr][0] = rounded
            self.chunks[rest] = [size - rounded, False]
            self.prev[rest] = addr
            if rest + size - rounded in self.chunks:
                self.prev[rest + size - rounded] = rest
            self._list(rest)
        return addr

    def _extend(self, rounded: int) -> None:
        """Extend: a new region of curr_region_allocation_bytes_, doubled until it holds the
        request, and doubled after it when it did not have to grow."""
        grew = False
        while rounded > self.region_bytes:
            self.region_bytes *= 2
            grew = True
        self.regions.append(self.region_bytes)
        addr = (1 << 60) - len(self.regions) * _REGION_SPACING  # later regions lower
        self.chunks[addr] = [self.region_bytes, False]
        self.prev[addr] = None
        self._list(addr)
        if not grew:
            self.region_bytes *= 2

    def _merge(self, first: int, second: int) -> None:
        """Merge: `second`, right after `first`, joins it (neither in the free list)."""
        self.chunks[first][0] += self.chunks.pop(second)[0]
        del self.prev[second]
        after = first + self.chunks[first][0]
        if after in self.chunks:
            self.prev[after] = first

    def _list(self, addr: int) -> None:
        bisect.insort(self.free_list, (self.chunks[addr][0], addr))

    def _unlist(self, addr: int) -> None:
        k = bisect.bisect_left(self.free_list, (self.chunks[addr][0], addr))
        del self.free_list[k]


# An event: ("+", key, fixed bytes, bytes per sample), ("-", key, 0, 0) or ("=", key, new
# key, 0) (framework_memory.step_moments' `events`).
Event = tuple[str, object, float, float]


def replay(allocator: BFC, events: Iterable[Event], batch: int) -> BFC:
    """Apply `events` at `batch` to `allocator`."""
    for op, key, fixed, per in events:
        if op == "+":
            allocator.allocate(key, round(fixed + batch * per))
        elif op == "-":
            allocator.free(key)
        else:
            allocator.rename(key, fixed)
    return allocator


def measured_peaks(events: Sequence[Sequence[Event]], batches: Sequence[int],
                   steps: int = 2, small: int = SMALL_ALLOCATION) -> list[int]:
    """The peaks a measurement reads (cnnlab.calc.measure._child) at `batches`, one after
    the other in one process: `before` (the model's variables, the batch, the optimizer's
    slots) at the first batch; at each batch, `steps` - 1 warm-up steps,
    `reset_memory_stats` and the measured step. Between batches the images and targets are
    made again at the next batch; what else the earlier batch's graph kept stays."""
    before, first, step = events
    bfc = replay(BFC(small), before, batches[0])
    remade = [e for e in before if e[1] in (*_BATCH_TENSORS, _GRAPH_TENSOR) or (
        isinstance(e[1], tuple) and e[1][0] in _BATCH_TENSORS)]
    peaks = []
    for k, batch in enumerate(batches):
        if k:
            for key in _BATCH_TENSORS:
                bfc.free(key)
            replay(bfc, [(op, (key, batch) if key == _GRAPH_TENSOR else key, f, p)
                         for op, key, f, p in remade], batch)
        for n in range(steps - 1):
            replay(bfc, first if k == n == 0 else step, batch)
        bfc.reset_peak()
        replay(bfc, step, batch)
        peaks.append(bfc.peak_bytes_in_use)
    return peaks


# What is alive before the step that the allocator sees separately (the rest of `always`).
_RESIDENT_TERMS = ("runtime", "gradient accumulators", "batchnorm input-gradient sums")
_BATCH_TENSORS = ("input batch", "target batch")
_GRAPH_TENSOR = "batchnorm input-gradient sums"  # each batch's graph leaves its own


@functools.lru_cache(maxsize=512)
def measurement_events(step_moments, input_shape: tuple[int, ...], layers: tuple, dtype: str,
                       optimizer: str, c, accum_steps: int = 1
                       ) -> tuple[tuple[Event, ...], ...]:
    """(before, first, step): the allocations of a measurement (cnnlab.calc.measure._child)
    before its first step, of the first step and of any later step (framework_memory.
    step_moments' events, then the frees of what the step left: its weight gradients and
    temporaries).

    Before (traced from the model's build on: AlexNet, LeNet-5, random stacks): each
    layer's variables as Keras builds them (its initializer's three tensors,
    StatelessRandomUniformV2, Mul and AddV2, the last kept as the variable; one tensor per
    layer, kernel and bias together), the images and the targets (tf.random.normal:
    RandomStandardNormal, Mul, AddV2, the last kept), the optimizer's first slot (zeros,
    per layer), then what else the model keeps between steps. `step_moments` is
    framework_memory's (passed in: that module simulates through this one)."""
    stats = analyze(input_shape, layers)
    specs = resolve(layers)
    step: list[Event] = []
    start = step_moments(stats, specs, dtype, optimizer, accum_steps, c, capture=0,
                         events=step)[0]
    terms = {what: (fixed, per) for what, fixed, per in start.terms}
    before: list[Event] = []

    def made(key: str, fixed: float, per: float) -> None:
        """A tensor made by three ops of its size, the last one kept."""
        before.extend([("+", (key, 1), fixed, per), ("+", (key, 2), fixed, per),
                       ("+", key, fixed, per), ("-", (key, 1), 0, 0), ("-", (key, 2), 0, 0)])

    for layer in stats.layers:
        made(f"{layer.name} variables", PARAM_BYTES * layer.params, 0.0)
    made("input batch", *terms["input batch"])
    made("target batch", *terms["target batch"])
    # The first slot is made before the first step; the others (Adam's second moment)
    # share its zeros until the first update writes them (traced: momentum/Initializer/zeros
    # before the step, AssignAddVariableOp in the first step's update of each variable).
    slots = OPTIMIZER_SLOTS[optimizer]
    later: dict[str, list[Event]] = {}
    for layer in stats.layers:
        made_slots = [("+", (layer.name, "slot", k), PARAM_BYTES * layer.trainable_params, 0.0)
                      for k in range(slots)]
        before += made_slots[:1]
        later[f"d {layer.name} weights"] = made_slots[1:]
    before += [("+", what, *terms[what]) for what in _RESIDENT_TERMS if what in terms]
    # The step ends with everything it allocated freed (in the order allocated).
    live: dict[object, None] = {}
    for op, key, new, _ in step:
        if op == "+":
            live[key] = None
        elif op == "-":
            live.pop(key, None)
        elif key in live:
            del live[key]
            live[new] = None
    step += [("-", key, 0, 0) for key in live]
    first = [e for event in step
             for e in (event, *(later.get(event[1], ()) if event[0] == "+" else ()))]
    return tuple(before), tuple(first), tuple(step)


def simulated_peaks(step_moments, input_shape: Sequence[int], layers: Sequence,
                    batches: Sequence[int],
                    dtype: str, optimizer: str, c, accum_steps: int = 1,
                    small: int = SMALL_ALLOCATION) -> list[int]:
    """The allocator's peaks of measured training steps at `batches`, one after the other
    in one process (`small`: see BFC)."""
    events = measurement_events(step_moments, tuple(input_shape), tuple(layers), dtype,
                                optimizer, c, accum_steps)
    return measured_peaks(events, batches, small=small)


@functools.lru_cache(maxsize=4096)
def simulated_peak(step_moments, input_shape: tuple[int, ...], layers: tuple, dtype: str,
                   optimizer: str, c, accum_steps: int, small: int, batch: int) -> int:
    """The allocator's peak of a training step at `batch` in a fresh process (cached: a
    search for the largest batch asks for many)."""
    return simulated_peaks(step_moments, input_shape, layers, [batch], dtype, optimizer, c,
                           accum_steps, small)[0]
