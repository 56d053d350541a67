"""Networks that shaped image classification, as calculator specifications.

- `network`: `Network` (a spec plus its blocks and paper), `SpecBuilder`, `weight_depth`.
- `builders`: `inception_module`, `residual_unit`; `lenet5`, `alexnet`, `googlenet`, `resnet`,
  `vgg16`; the registry (`BUILDERS`, `network(key)`).
- `summary`: what the Architectures page shows, computed from a spec (overview, stages,
  block summaries, module and unit comparisons).
- `page_text`: the page's sentences, with the published numbers read from `cnnlab.facts`.
- `concepts`: the three live experiments (CNN vs dense, pooling vs strided conv, LRN).
- `layers`: Keras layers Keras does not ship (LocalResponseNormalization).
- `charts`: the page's figures.

A new layer kind goes into `cnnlab.calc` (spec, grammar, analysis, keras_oracle); a new
network is a builder here made of calculator layers.
"""
