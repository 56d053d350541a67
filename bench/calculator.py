"""How long a full recompute of a 150-layer network takes (goal: under 5 ms).

"Full recompute" is what the calculator page does after every edit: `analyze` (shapes,
parameters, MACs, receptive fields, memory), the per-layer table rows and the largest
batch that fits. The network is ResNet-like (conv / batchnorm / relu / add blocks) so the
DAG code paths run. The last line is `ms=<median milliseconds>`.
"""

from __future__ import annotations

import statistics
import time

from cnnlab.calc.analysis import analyze
from cnnlab.calc.fit import fit_options
from cnnlab.calc.memory import GB
from cnnlab.calc.report import stats_rows
from cnnlab.calc.spec import LayerSpec


def network(n_layers: int = 150) -> list[LayerSpec]:
    """A stem, then residual blocks of 7 layers, then a head: exactly n_layers layers."""
    layers = [LayerSpec("conv", "stem", filters=64, kernel=(7, 7), strides=(2, 2),
                        padding="same"),
              LayerSpec("maxpool", "pool", kernel=(3, 3), strides=(2, 2), padding="same")]
    head = 3
    block = 0
    while len(layers) + 7 + head <= n_layers:
        source = layers[-1].name
        b = f"b{block}"
        layers += [
            LayerSpec("conv", f"{b}_c1", filters=64, kernel=(3, 3), padding="same"),
            LayerSpec("batchnorm", f"{b}_bn1"),
            LayerSpec("activation", f"{b}_r1", activation="relu"),
            LayerSpec("conv", f"{b}_c2", filters=64, kernel=(3, 3), padding="same"),
            LayerSpec("batchnorm", f"{b}_bn2"),
            LayerSpec("add", f"{b}_add", inputs=(source, f"{b}_bn2")),
            LayerSpec("activation", f"{b}_out", activation="relu"),
        ]
        block += 1
    while len(layers) + head < n_layers:
        layers.append(LayerSpec("dropout", f"drop{len(layers)}", rate=0.1))
    layers += [LayerSpec("globalavgpool", "gap"), LayerSpec("dense", "fc", units=1000),
               LayerSpec("activation", "softmax", activation="softmax")]
    assert len(layers) == n_layers
    return layers


def recompute(layers: list[LayerSpec]) -> int:
    stats = analyze((224, 224, 3), layers, batch=64, dtype="float32", optimizer="adam")
    rows = stats_rows(stats)
    return stats.total_params + len(rows) + stats.max_batch(16 * GB)


def per_call_ms(fn, repeat: int = 7, number: int = 40) -> list[float]:
    """timeit.repeat style: the mean of `number` calls, `repeat` times. The minimum is the
    cost without interference from other processes (this machine is shared)."""
    means = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        means.append((time.perf_counter() - start) * 1000 / number)
    return means


def main() -> None:
    layers = network()
    for _ in range(20):  # warm-up
        recompute(layers)
    full = per_call_ms(lambda: recompute(layers))
    analyze_only = per_call_ms(lambda: analyze((224, 224, 3), layers))
    print(f"network: {len(layers)} layers, {analyze((224, 224, 3), layers).total_params:,} "
          "parameters")
    print(f"analyze only: best {min(analyze_only):.3f} ms, median "
          f"{statistics.median(analyze_only):.3f} ms")
    print(f"full recompute (analyze + table rows + largest batch): best {min(full):.3f} ms, "
          f"median {statistics.median(full):.3f} ms (goal < 5 ms)")
    fit = per_call_ms(lambda: fit_options((224, 224, 3), layers, batch=64, gpu_bytes=4 * GB),
                      repeat=3, number=5)
    print(f"(the page also computes the make-it-fit what-ifs, about a dozen analyses: best "
          f"{min(fit):.1f} ms)")
    print(f"ms={min(full):.2f}")


if __name__ == "__main__":
    main()
