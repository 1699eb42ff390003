"""Pure numpy output metrics, on hand-made arrays (no TensorFlow, no LiteRT)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tflite_operator.converter.metrics import (
    KL_EPSILON,
    SNR_CAP_DB,
    correct_count,
    cosine_similarity,
    is_classifier_like,
    is_probability,
    kl_divergence,
    snr_db,
    task_accuracy,
    top1_agreement,
    top5_agreement,
)


def test_cosine_similarity_edge_cases():
    assert cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0
    assert cosine_similarity(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.array([1.0, 2]), np.array([-1.0, -2])) == pytest.approx(-1.0)


def test_top1_agreement_counts_rows():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    cand = np.array([[0.8, 0.2], [0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    assert top1_agreement(ref, cand) == 0.75


def test_classifier_rule():
    assert is_classifier_like((1, 10))
    assert not is_classifier_like((1, 1))  # a single sigmoid score
    assert not is_classifier_like((1, 4, 4))  # a feature map
    assert not is_classifier_like((10,))  # no batch axis: ambiguous


def test_snr_on_known_numbers():
    ref = np.array([[3.0, 4.0]])  # signal power 25
    assert snr_db(ref, ref + np.array([[0.5, 0.0]])) == pytest.approx(20.0)  # noise 0.25
    assert snr_db(ref, ref + np.array([[0.05, 0.0]])) == pytest.approx(40.0)
    assert snr_db(ref, np.zeros_like(ref)) == pytest.approx(0.0)  # noise as strong as signal


def test_snr_edge_cases_are_capped_and_finite():
    ref = np.array([1.0, -2.0, 3.0])
    assert snr_db(ref, ref.copy()) == SNR_CAP_DB  # identical: +cap, not inf
    assert snr_db(np.zeros(3), np.zeros(3)) == SNR_CAP_DB  # nothing to get wrong
    assert snr_db(np.zeros(3), np.ones(3)) == -SNR_CAP_DB  # all noise, no signal
    assert snr_db(ref, ref + 1e-30) == SNR_CAP_DB  # beyond the cap is the cap
    assert math.isnan(snr_db(ref, np.array([1.0, np.nan, 3.0])))
    assert math.isnan(snr_db(ref, np.array([1.0, np.inf, 3.0])))


def test_probability_rows_are_detected_by_sum_and_sign():
    assert is_probability(np.array([[0.2, 0.8], [0.5, 0.5]]))
    assert is_probability(np.array([[0.2, 0.8000004]]))  # float32 softmax rounding
    assert not is_probability(np.array([[0.2, 0.7]]))  # sigmoid scores (multi-label)
    assert not is_probability(np.array([[2.0, -1.0]]))  # logits summing to 1
    assert not is_probability(np.array([[0.0, 0.0]]))
    assert not is_probability(np.array([[np.nan, 1.0]]))


def test_kl_divergence_on_known_numbers():
    p = np.array([[0.5, 0.5]])
    q = np.array([[0.25, 0.75]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q) == pytest.approx(expected)
    assert kl_divergence(p, p) == 0.0
    # Mean over rows: a second, identical row halves it.
    assert kl_divergence(np.vstack([p, p]), np.vstack([q, p])) == pytest.approx(expected / 2)


def test_kl_divergence_stays_finite_when_a_probability_rounds_to_zero():
    p = np.array([[0.9, 0.1, 0.0]])
    q = np.array([[1.0, 0.0, 0.0]])  # an int8 softmax rounded the 0.1 away
    kl = kl_divergence(p, q)
    assert math.isfinite(kl)
    assert kl == pytest.approx(0.9 * math.log(0.9) + 0.1 * math.log(0.1 / KL_EPSILON), rel=1e-3)
    # The reference's zeros contribute nothing, whatever the candidate puts there.
    assert kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.99, 0.01]])) == pytest.approx(
        -math.log(0.99)
    )
    assert math.isnan(kl_divergence(p, np.array([[np.nan, 0.5, 0.5]])))


def test_top5_agreement_counts_the_source_answer_in_the_variant_top5():
    ref = np.zeros((2, 8))
    ref[0, 0] = ref[1, 7] = 1.0
    cand = np.tile(np.arange(8.0), (2, 1))  # top 5 of each row: classes 3..7
    assert top5_agreement(ref, cand) == 0.5  # row 0 expects class 0: out; row 1 class 7: in
    assert top5_agreement(np.eye(5), np.eye(5)) is None  # 5 classes: every class is top 5


def test_task_accuracy_against_labels():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert correct_count(scores, np.array([1, 1, 1])) == 2
    assert task_accuracy(scores, np.array([1, 0, 1])) == 1.0
    assert task_accuracy(scores[:, None, :], np.array([0, 0, 0])) == pytest.approx(1 / 3)


def test_near_uniform_outputs_mislead_top1_not_kl_or_top5():
    """The int8 ResNet50 case of issue 10: max error 0.0012, top-1 agreement 0 %.

    1000 near-uniform probabilities whose three leading classes differ by less than the
    variant's error: the argmax moves among them, the distribution hardly changes.
    """
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 0.01, (64, 1000))
    logits[:, :3] += 0.5  # three classes lead, close together
    reference = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    noisy = logits + rng.normal(0.0, 0.02, logits.shape)
    candidate = np.exp(noisy) / np.exp(noisy).sum(axis=-1, keepdims=True)
    assert np.abs(reference - candidate).max() < 0.0002
    assert top1_agreement(reference, candidate) < 0.6
    assert top5_agreement(reference, candidate) == 1.0
    assert kl_divergence(reference, candidate) < 1e-3
    assert snr_db(reference, candidate) > 30.0
