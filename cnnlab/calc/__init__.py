"""The calculator room: output shapes, parameters, multiply-accumulates, receptive fields and
memory of a layer stack, exact to what Keras builds. Pure Python (no TensorFlow) but for the
Keras oracle. Import each name from the module that defines it:

* `spec`: `LayerSpec` (one layer as the user describes it), the layer kinds, `SpecError`,
  the calculator's limits (`LIMITS`: past them a number is refused in one line) and the
  argument checks.
* `analysis`: `analyze` walks the specs once, `LayerSpec -> LayerStats -> ModelStats`
  (shapes, parameters, MACs, receptive fields); `resolve` names and checks the graph.
* `memory`: the memory model (`MEMORY_ASSUMPTIONS`, its one statement) and `MemoryEstimate`.
* `grammar`: the text grammar (`conv:100:3:2:same`) of the CLI, the URL and the page, its
  table form and its help text, all from one table (`FORMS`).
* `report`: the numbers as people read them (byte sizes, per-layer rows, totals).
* `fit`: make it fit, each remedy for a training run too big for its GPU.
* `presets`: ready-made networks and the calculator's configuration as a URL.
* `bookmark`: a long layer list packed into one URL value, and when a URL is too long.
* `charts`: the calculator page's Plotly figures.
* `keras_oracle`: the same spec built as a real Keras model (imports Keras when called).
"""
