"""Pure numpy output metrics, on hand-made arrays (no TensorFlow, no LiteRT)."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_operator.converter.metrics import (
    cosine_similarity,
    is_classifier_like,
    top1_agreement,
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
