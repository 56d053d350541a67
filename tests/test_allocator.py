"""The BFC allocator's simulation (cnnlab.calc.allocator): its rules on hand-computed
sequences, a traced sequence replayed chunk for chunk, and the framework model's tensors
handed to it one by one."""

from __future__ import annotations

import pytest

from cnnlab.calc.allocator import BFC, measurement_events, rounded_bytes
from cnnlab.calc.framework_memory import COEFFICIENTS, framework_estimate, step_moments
from cnnlab.calc.memory_cases import random_stack

MiB = 1 << 20


def test_a_request_rounds_up_to_256_bytes_and_small_ones_are_not_the_bfcs():
    assert rounded_bytes(1) == 256 and rounded_bytes(256) == 256 and rounded_bytes(257) == 512
    cpu = BFC()  # MklCPUAllocator: under 256 KiB to its small-size allocator
    assert cpu.allocate("a", 100_000) == 0 and cpu.bytes_in_use == 0 and not cpu.regions
    every = BFC(small=0)  # a GPU's: every request
    assert every.allocate("a", 100_000) == rounded_bytes(100_000)
    assert every.regions == [2 * MiB]  # the first region: 2 MiB


def test_regions_double_and_a_chunk_under_twice_the_request_is_handed_over_whole():
    bfc = BFC()
    request = int(3.375 * MiB)
    # No region yet: 2 MiB is doubled to 4 MiB to hold it; the region (one free chunk of
    # 4 MiB) is under twice the request, so it is handed over whole.
    assert bfc.allocate("a", request) == 4 * MiB
    # The next region: 4 MiB again (the size did not have to grow for it)...
    assert bfc.allocate("b", request) == 4 * MiB
    # ... and then it doubles: 8 MiB, at least twice the request, so it is split.
    assert bfc.allocate("c", request) == request
    assert bfc.regions == [4 * MiB, 4 * MiB, 8 * MiB]
    assert bfc.bytes_in_use == bfc.peak_bytes_in_use == 8 * MiB + request
    # A tensor that opens a region takes its power of two (random stack 9's conv output:
    # 75.5 MB in a 128 MiB region, as traced).
    assert bfc.allocate("d", 75_497_472) == 128 * MiB
    assert bfc.regions[-1] == 128 * MiB


def test_best_fit_split_and_coalescing():
    bfc = BFC()
    assert bfc.allocate("big", 30 * MiB) == 32 * MiB  # region 32 MiB, whole (under 60 MiB)
    bfc.free("big")
    # The smallest free chunk that holds it, split: 1 MiB is under half of 32 MiB.
    assert bfc.allocate("a", 1 * MiB) == 1 * MiB
    assert bfc.allocate("b", 1 * MiB) == 1 * MiB
    assert sorted(size for size, _ in bfc.free_list) == [30 * MiB]
    # Freed, a chunk merges with its free neighbours: the region is one chunk again.
    bfc.free("a")
    assert sorted(size for size, _ in bfc.free_list) == [1 * MiB, 30 * MiB]
    bfc.free("b")
    assert [size for size, _ in bfc.free_list] == [32 * MiB]
    assert bfc.bytes_in_use == 0 and bfc.peak_bytes_in_use == 32 * MiB
    bfc.reset_peak()
    assert bfc.peak_bytes_in_use == 0


def test_a_chunk_that_would_waste_128_mib_is_split_anyway():
    bfc = BFC()
    # 300 MiB: the region grows to 512 MiB, under twice the request, but the rest (212 MiB)
    # is at least max_internal_fragmentation_bytes (128 MiB): split.
    assert bfc.allocate("a", 300 * MiB) == 300 * MiB and bfc.regions == [512 * MiB]
    bfc.free("a")
    # 400 MiB in the same (free again) 512 MiB chunk would leave 112 MiB: handed over whole.
    assert bfc.allocate("b", 400 * MiB) == 512 * MiB and bfc.regions == [512 * MiB]


# Random stack 9, float32, batch 128 (bench/memory_trace.py): every allocator event of the
# warm-up step and the measured step, (id, requested bytes, bytes the allocator gave) or
# (id,) for a free; reset_memory_stats before id 13 (a 1.2 MB marker), peak 276,824,064.
TRACE = [(0, 3538944, 4194304), (1, 3538944, 4194304), (2, 3538944, 3538944), (0,), (1,),
         (3, 14155776, 16777216), (4, 3538944, 4194304), (3,), (5, 75497472, 134217728),
         (6, 4718592, 4849664), (7, 4718592, 4718592), (8, 14155776, 14155776),
         (9, 14155776, 14155776), (9,), (10, 14155776, 14155776), (4,), (8,),
         (11, 4718592, 4718592), (10,), (7,), (11,), (12, 75497472, 134217728), (6,), (5,),
         (12,), (13, 1200000, 1200128), (14, 1200000, 1200128), (15, 1200000, 1794048),
         (13,), (14,), (15,), (16, 14155776, 16777216), (17, 3538944, 4194304), (16,),
         (18, 75497472, 134217728), (19, 4718592, 4849664), (20, 4718592, 4718592),
         (21, 14155776, 14155776), (22, 14155776, 14155776), (22,), (23, 14155776, 14155776),
         (17,), (21,), (24, 4718592, 4718592), (23,), (20,), (24,),
         (25, 75497472, 134217728), (19,), (18,), (25,)]


def test_a_traced_sequence_is_replayed_chunk_for_chunk():
    bfc = BFC()
    for event in TRACE:
        if len(event) == 1:
            bfc.free(event[0])
            continue
        key, requested, given = event
        if key == 13:
            bfc.reset_peak()
        assert bfc.allocate(key, requested) == given, event
    assert bfc.peak_bytes_in_use == 276_824_064
    assert bfc.regions == [4 * MiB, 4 * MiB, 8 * MiB, 16 * MiB, 128 * MiB, 128 * MiB]


@pytest.mark.parametrize("seed", [0, 3, 5, 9, 11])
@pytest.mark.parametrize("dtype", ["float32", "mixed_float16"])
def test_the_steps_tensors_one_by_one_peak_where_the_moments_do(seed, dtype):
    """step_moments' events, counted as bytes requested, reach the moments' peak."""
    shape, net = random_stack(seed)
    fw = framework_estimate(shape, net, batch=64, dtype=dtype)
    before, first, step = measurement_events(step_moments, tuple(shape), tuple(net), dtype, "adam",
                                             COEFFICIENTS)
    live: dict = {}
    peak = 0.0
    for k, events in enumerate((before, first, step)):
        for op, key, fixed, per in events:
            if op == "+":
                live[key] = fixed + 64 * per
            elif op == "-":
                live.pop(key, None)
            elif key in live:
                live[fixed] = live.pop(key)
            if k == 2:  # the measured step
                peak = max(peak, sum(live.values()))
    assert peak == pytest.approx(fw.tensors_at(64), abs=0.5)  # tensors_at rounds to a byte
    assert len(first) > len(step)  # Adam's second slot appears in the first update
    assert fw.tensor_bytes <= fw.training_bytes  # whole chunks hold at least the requests
