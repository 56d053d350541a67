"""Training: data, the one job runner, and what a trained network shows.

- `datasets`: MNIST and Fashion-MNIST from Keras, or offline from what packages ship.
- `config`: `TrainConfig` (the seed CNN or a dense net with the same parameter budget).
- `model`: the Keras model of a config, its data, and the job that fits it.
- `jobs`: `TrainingJob` (a job's lifecycle, `JobState`) and `JobManager` (queue, owners).
  A new training backend plugs in here, behind the same job interface.
- `meter`: progress, ETA and images/s, pure; `streaming`: the Keras callback.
- `metrics`: confusion matrix, mistakes, `TestReport`, `predict_probs` (Train and Transfer);
  `export`: the one `.keras` export.
- `inside`: filters and activations; `digit`: your own digit through MNIST's preprocessing;
  `runs`: a user's finished runs and their comparison; `charts`: the page's figures.
"""
