"""How a classifier does on held-out images: one module for every page and command.

Pure numpy (no Keras): the confusion matrix, per-class precision and recall, the most
confident mistakes, and `predict_probs`, the one way cnnlab runs a Keras classifier over
many inputs. The Train page (MNIST) and the Transfer page (your own classes) both report
through `TestReport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """counts[true, predicted] over n classes."""
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return counts


@dataclass(frozen=True)
class Mistake:
    index: int          # into the test set
    true: int
    predicted: int
    confidence: float   # probability of the (wrong) predicted class


def worst_mistakes(probs: np.ndarray, y_true: np.ndarray, k: int | None = 16) -> list[Mistake]:
    """The wrong predictions made with the highest confidence, most confident first
    (all of them when k is None)."""
    probs = np.asarray(probs)
    y_true = np.asarray(y_true, np.int64)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    conf = probs[wrong, pred[wrong]]
    order = wrong[np.argsort(-conf, kind="stable")][:k]
    return [Mistake(int(i), int(y_true[i]), int(pred[i]), float(probs[i, pred[i]]))
            for i in order]


@dataclass(frozen=True)
class TestReport:
    """How the trained classifier does on the held-out test images."""

    __test__ = False  # not a pytest test class

    class_names: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray        # (n, classes)
    accuracy: float
    confusion: np.ndarray    # rows: true class, columns: predicted class
    precision: np.ndarray    # per class; 0 where the class was never predicted
    recall: np.ndarray       # per class; 0 where the class has no test image
    support: np.ndarray      # test images per class

    def mistakes(self, k: int | None = 16) -> list[Mistake]:
        """The k most confident wrong predictions (all of them when k is None)."""
        return worst_mistakes(self.probs, self.y_true, k)

    def indices(self, true: int, predicted: int) -> np.ndarray:
        """Test images with this true label predicted as `predicted` (a confusion cell)."""
        return np.flatnonzero((self.y_true == true) & (self.y_pred == predicted))

    def per_class_rows(self) -> list[dict[str, object]]:
        return [{"class": name, "precision": float(self.precision[c]),
                 "recall": float(self.recall[c]), "test images": int(self.support[c])}
                for c, name in enumerate(self.class_names)]


def test_report(probs: np.ndarray, y_true: np.ndarray, class_names: Sequence[str]) -> TestReport:
    """Accuracy, confusion matrix, per-class precision (TP / predicted) and recall (TP / true)."""
    probs = np.asarray(probs)
    y_true = np.asarray(y_true, dtype=np.int64)
    k = len(class_names)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    confusion = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    return TestReport(list(class_names), y_true, y_pred, probs,
                      float(np.mean(y_pred == y_true)) if len(y_true) else 0.0,
                      confusion, precision, recall, actual)


test_report.__test__ = False  # a function named test_* that pytest must not collect


def predict_probs(model, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """float32 softmax outputs of a Keras `model` for `inputs`, in inference mode.

    Eager calls batch by batch: tracing a large graph for `predict` (Inception's 300
    layers) costs tens of seconds on a CPU, more than a few hundred images take eagerly.
    """
    parts = [np.asarray(model(inputs[i:i + batch_size], training=False), np.float32)
             for i in range(0, len(inputs), batch_size)]
    return (np.concatenate(parts) if parts
            else np.zeros((0, model.output_shape[-1]), np.float32))
