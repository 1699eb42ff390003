"""Pure numpy metrics that compare a converted model's outputs with the source model's.

No TensorFlow, no LiteRT: arrays in, numbers out, tested on hand-made arrays. Arrays hold all
samples stacked along axis 0; row-wise metrics read them as (N, C) with C the last axis.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cosine_similarity",
    "is_classifier_like",
    "top1_agreement",
]


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between the flattened arrays; 1.0 when both are all zeros."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.clip(np.dot(x, y) / (nx * ny), -1.0, 1.0))


def is_classifier_like(per_sample_shape: tuple[int, ...]) -> bool:
    """A classifier output is one row of C > 1 scores per sample: shape (1, C).

    Rank-2 with a batch of 1 is what Dense-softmax/logits heads produce; anything else
    (detection boxes, embeddings of rank 3+, a single sigmoid score) has no meaningful argmax.
    """
    return len(per_sample_shape) == 2 and per_sample_shape[0] == 1 and per_sample_shape[1] > 1


def _rows(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).reshape(-1, np.shape(array)[-1])


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Share of rows whose argmax is the same; arrays are (N, C)."""
    ref, cand = _rows(reference), _rows(candidate)
    return float(np.mean(np.argmax(ref, axis=-1) == np.argmax(cand, axis=-1)))
