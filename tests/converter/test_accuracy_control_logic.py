"""The pure side of accuracy control: ranking, candidates and the search order, no TensorFlow."""

from __future__ import annotations

import math

from tflite_operator.api.report_metrics import LayerError
from tflite_operator.converter.accuracy_control import (
    candidates,
    doubling,
    rank_layers,
    search,
)


def err(tensor: str, value: float) -> LayerError:
    return LayerError(tensor=tensor, op="CONV_2D", rmse_over_scale=value)


def test_ranking_is_worst_first_with_unmeasured_layers_last_and_ties_by_name():
    ranked = rank_layers([err("b", 0.3), err("nan", math.nan), err("a", 0.3), err("z", 40.0)])
    assert [e.tensor for e in ranked] == ["z", "a", "b", "nan"]


def test_candidates_skip_layers_with_nothing_to_gain_and_duplicates():
    ranked = rank_layers([err("bad", 9.0), err("exact", 0.0), err("nan", math.nan)])
    assert candidates([*ranked, err("bad", 9.0)]) == ["bad"]
    assert candidates(ranked, threshold=10.0) == []


def test_doubling_ends_exactly_at_the_limit():
    assert doubling(0) == []
    assert doubling(1) == [1]
    assert doubling(5) == [1, 2, 4, 5]
    assert doubling(8) == [1, 2, 4, 8]
    assert len(doubling(64)) == 7


def needs(*culprits: str):
    """An attempt that meets the budget once every culprit is in float; records each try."""
    tried: list[list[str]] = []

    def attempt(layers: list[str]) -> bool:
        tried.append(layers)
        return set(culprits) <= set(layers)

    return attempt, tried


RANKED = [f"l{i}" for i in range(20)]


def test_one_bad_layer_is_found_in_one_step():
    attempt, tried = needs("l0")
    result = search(RANKED, 8, attempt, meets=bool)
    assert result.met and result.chosen.float_layers == ["l0"]
    assert tried == [["l0"]]


def test_doubling_overshoots_then_bisection_gives_layers_back():
    attempt, tried = needs("l0", "l4")  # needs the first 5
    result = search(RANKED, 16, attempt, meets=bool)
    assert [len(t) for t in tried] == [1, 2, 4, 8, 6, 5]
    assert result.chosen.float_layers == RANKED[:5]
    assert len(result.attempts) == 6


def test_a_budget_out_of_reach_stops_at_the_cap_and_chooses_nothing():
    attempt, tried = needs("l10")
    result = search(RANKED, 4, attempt, meets=bool)
    assert not result.met
    assert [len(t) for t in tried] == [1, 2, 4]
    assert result.chosen is None
    assert result.largest.float_layers == RANKED[:4]


def test_the_cap_is_never_exceeded_and_fewer_candidates_than_the_cap_are_all_tried():
    attempt, tried = needs("l2")
    result = search(RANKED[:3], 64, attempt, meets=bool)
    assert [len(t) for t in tried] == [1, 2, 3]
    assert result.chosen.float_layers == RANKED[:3] == result.largest.float_layers
    assert max(len(t) for t in tried) <= 3


def test_no_candidates_means_no_attempt():
    attempt, tried = needs("l0")
    result = search([], 8, attempt, meets=bool)
    assert tried == [] and result.chosen is None and result.largest is None
    assert not result.met


def test_the_budget_predicate_is_the_targets_accuracy_part_over_every_signature():
    from tflite_operator.api.report_metrics import AccuracyReport, SignatureCheck
    from tflite_operator.api.spec_checks import Target
    from tflite_operator.converter.accuracy_budgets import accuracy_budgets, accuracy_failures

    target = Target(max_output_error=0.1, min_top1_agreement=0.9, max_model_size_bytes=1)

    def check(key: str, error: float, top1: float) -> SignatureCheck:
        accuracy = AccuracyReport(
            samples=4,
            outputs=[],
            max_abs_error=error,
            top1_agreement=top1,
            within_tolerance=True,
            verdict="",
        )
        return SignatureCheck(key=key, accuracy=accuracy)

    assert accuracy_budgets(target, 0.1) == ["maxOutputError 0.1", "minTop1Agreement 0.9"]
    # Size is not an accuracy budget: float layers cannot fix it.
    assert accuracy_failures([check("a", 0.05, 0.95)], target, 0.1) == []
    failures = accuracy_failures([check("a", 0.05, 0.95), check("b", 0.2, 0.8)], target, 0.1)
    assert len(failures) == 2 and "'b'" in failures[0] and "'b'" in failures[1]
    # Not measured is not met.
    assert accuracy_failures([SignatureCheck(key="a")], target, 0.1)
