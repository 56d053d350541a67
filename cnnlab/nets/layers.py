"""Keras layers cnnlab needs that Keras does not ship.

This module imports keras and tensorflow at the top: import it only from code that
already needs a model (cnnlab.calc.keras_oracle, the architectures and training code), never
from a page that draws without one. Import it before `keras.models.load_model` on a file
that contains these layers, so that the registration below has run.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="cnnlab")
class LocalResponseNormalization(keras.layers.Layer):
    """Local Response Normalization across channels (AlexNet, 2012), no parameters.

    Each activation is divided by ``(bias + alpha * sum(a**2)) ** beta``, the sum running
    over the ``depth_radius`` neighbouring feature maps on each side at the same position,
    so the strongest activations inhibit their neighbours. Wraps
    ``tf.nn.local_response_normalization`` (defaults as there). AlexNet's values in these
    terms: depth_radius=2, bias=1 (the paper used 2), alpha=1e-4 / 5 (Caffe divides its
    alpha by the window size 5), beta=0.75.
    """

    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
                 beta: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        # tf.nn.local_response_normalization works on float32/float16 NHWC tensors.
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
            beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
                      beta=self.beta)
        return config
