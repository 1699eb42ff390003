"""Pure numpy metrics that compare a converted model's outputs with the source model's.

No TensorFlow, no LiteRT: arrays in, numbers out, tested on hand-made arrays. Arrays hold all
samples stacked along axis 0; row-wise metrics read them as (N, C) with C the last axis.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "KL_EPSILON",
    "PROBABILITY_SUM_TOLERANCE",
    "SNR_CAP_DB",
    "correct_count",
    "cosine_similarity",
    "is_classifier_like",
    "is_probability",
    "kl_divergence",
    "snr_db",
    "task_accuracy",
    "top1_agreement",
    "top5_agreement",
]

# SNR of identical outputs is infinite, which JSON cannot carry (pydantic writes null, read back
# as "not measured"). The cap is far above any real difference: an fp32 variant, which differs
# from the source by float32 rounding only, measures about 145 dB (the demo's digits CNN).
# An all-zero reference against a non-zero candidate is all noise: -cap.
SNR_CAP_DB = 200.0
# A probability row sums to 1; float32 softmax is off by ~1e-7, so 1e-3 accepts every softmax
# and still rejects logits or independent sigmoid scores (multi-label heads).
PROBABILITY_SUM_TOLERANCE = 1e-3
# A quantized softmax rounds small probabilities to exactly 0, where log(p/q) is infinite. Each
# candidate row is clipped to this floor and renormalized first, so KL stays finite and large.
KL_EPSILON = 1e-7
TOP_K = 5


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


def top5_agreement(reference: np.ndarray, candidate: np.ndarray) -> float | None:
    """Share of rows whose reference top-1 class is among the candidate's 5 highest scores.

    Top-5 accuracy with the source model's prediction as the label: when a small error
    reorders a few leading classes that score nearly alike, top-1 agreement drops while the
    variant still ranks the source's answer near the top. Equal scores rank by class id, as
    argmax does, so the 5 are the ones a device would list. None when a row has C <= 5
    classes, where every class is in the top 5.
    """
    ref, cand = _rows(reference), _rows(candidate)
    if ref.shape[-1] <= TOP_K:
        return None
    expected = np.argmax(ref, axis=-1)
    # A stable sort keeps ties in class-id order; argpartition would break them arbitrarily.
    top = np.argsort(-cand, axis=-1, kind="stable")[:, :TOP_K]
    return float(np.mean(np.any(top == expected[:, None], axis=-1)))


def snr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-noise ratio 10*log10(sum(ref^2) / sum((ref - cand)^2)) in dB, over all values.

    Higher is closer: 20 dB means the error's power is 1 % of the output's, 40 dB 0.01 %.
    Clamped to +-SNR_CAP_DB (identical outputs give +cap, a zero reference with any error
    -cap, two all-zero arrays +cap); NaN when an output holds NaN or inf.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(cand))):
        return math.nan
    noise = float(np.sum((ref - cand) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return SNR_CAP_DB
    if signal == 0.0:
        return -SNR_CAP_DB
    return float(np.clip(10.0 * math.log10(signal / noise), -SNR_CAP_DB, SNR_CAP_DB))


def is_probability(reference: np.ndarray) -> bool:
    """Every row non-negative and summing to 1 (within PROBABILITY_SUM_TOLERANCE): a softmax.

    Judged on the source model's output, which defines what the output means; the candidate's
    rows may be off by the quantization step.
    """
    ref = _rows(np.asarray(reference, dtype=np.float64))
    if ref.size == 0 or not np.all(np.isfinite(ref)) or np.any(ref < 0):
        return False
    return bool(np.all(np.abs(ref.sum(axis=-1) - 1.0) <= PROBABILITY_SUM_TOLERANCE))


def kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean over rows of KL(reference || candidate) in nats; rows are probability vectors.

    0 for identical rows. The candidate's rows are clipped to KL_EPSILON and renormalized (a
    quantized softmax can round a probability to 0, or sum to 1 only within its step); terms
    where the reference is 0 contribute 0. NaN when the candidate holds NaN or inf.
    """
    p = _rows(np.asarray(reference, dtype=np.float64))
    q = _rows(np.asarray(candidate, dtype=np.float64))
    if not np.all(np.isfinite(q)):
        return math.nan
    p = np.clip(p, 0.0, None)
    p = p / p.sum(axis=-1, keepdims=True)
    q = np.clip(q, KL_EPSILON, None)
    q = q / q.sum(axis=-1, keepdims=True)
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0)
    return float(max(np.mean(np.sum(terms, axis=-1)), 0.0))


def correct_count(scores: np.ndarray, labels: np.ndarray) -> int:
    """How many rows' argmax is the row's label (an integer class id)."""
    predicted = np.argmax(_rows(scores), axis=-1)
    return int(np.sum(predicted == np.asarray(labels).ravel()))


def task_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy: share of rows whose argmax is the row's label."""
    return correct_count(scores, labels) / len(np.asarray(labels).ravel())
