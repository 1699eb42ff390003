"""Accuracy control: which layers of a quantized model to keep in float, and in what order to try.

Pure logic, no TensorFlow: the ranking works on per-layer error figures, the search on two
callables the caller supplies, `attempt(float_layers) -> result` (re-quantize with those layers
in float, validate) and `meets(result) -> bool` (do the accuracy budgets hold). New budgets
plug in through `meets` (converter/accuracy_budgets.py's accuracy_failures), not here.

Search order: the worst-ranked layers first, as prefixes of the ranking, doubling the prefix
(1, 2, 4, ... up to the cap) until the budgets hold, then bisecting back between the last prefix
that missed and the first that met. Each attempt costs a re-quantization and a validation run
(seconds for a small model, a minute for a large one); doubling bounds the attempts by about
2*log2(cap) (at most 13 for the cap of 64) where one layer at a time could need 64, and the
bisection gives back float layers that doubling overshot. Prefixes assume the ranking is right;
a layer that only hurts together with another is found when the prefix reaches both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tflite_operator.api.report_metrics import LayerError

T = TypeVar("T")

# Layer errors kept in the report: enough for a chart of the worst, small enough for the JSON.
MAX_REPORTED_LAYERS = 50


def rank_layers(errors: Iterable[LayerError]) -> list[LayerError]:
    """Worst first; a layer without a finite figure (no samples reached it) goes last.

    Ties break on the tensor name, so the same model gives the same order on every run.
    """

    def key(e: LayerError) -> tuple[int, float, str]:
        finite = math.isfinite(e.rmse_over_scale)
        return (0 if finite else 1, -e.rmse_over_scale if finite else 0.0, e.tensor)

    return sorted(errors, key=key)


def candidates(ranked: Sequence[LayerError], threshold: float = 0.0) -> list[str]:
    """Tensor names worth keeping in float, worst first: finite errors above `threshold`.

    A layer whose error is exactly zero gains nothing from float and only costs size.
    """
    names: list[str] = []
    for e in ranked:
        worth = math.isfinite(e.rmse_over_scale) and e.rmse_over_scale > threshold
        if worth and e.tensor not in names:
            names.append(e.tensor)
    return names


def doubling(limit: int) -> list[int]:
    """Prefix sizes 1, 2, 4, ... ending exactly at `limit` (empty when limit < 1)."""
    sizes: list[int] = []
    size = 1
    while size < limit:
        sizes.append(size)
        size *= 2
    if limit >= 1:
        sizes.append(limit)
    return sizes


@dataclass(frozen=True)
class Attempt(Generic[T]):
    float_layers: list[str]
    result: T
    meets: bool


@dataclass
class SearchResult(Generic[T]):
    attempts: list[Attempt[T]] = field(default_factory=list)

    @property
    def chosen(self) -> Attempt[T] | None:
        """The fewest float layers that met the budgets; None when no attempt met them.

        Unlike NNCF, which returns the model with the most layers reverted, a model that still
        misses is not worth its float layers: it would ship larger and slower and still fail
        the target (measured on MobileNetV2: 16 float layers, +130 kB, 2x p50, same error).
        """
        met = [a for a in self.attempts if a.meets]
        return min(met, key=lambda a: len(a.float_layers)) if met else None

    @property
    def largest(self) -> Attempt[T] | None:
        """The attempt with the most float layers: how close the cap got."""
        return max(self.attempts, key=lambda a: len(a.float_layers), default=None)

    @property
    def met(self) -> bool:
        return any(a.meets for a in self.attempts)


def search(
    ranked: Sequence[str],
    max_float_layers: int,
    attempt: Callable[[list[str]], T],
    meets: Callable[[T], bool],
) -> SearchResult[T]:
    """Try prefixes of `ranked` in float (see the module's docstring for the order)."""
    result: SearchResult[T] = SearchResult()
    limit = min(max_float_layers, len(ranked))

    def run(size: int) -> bool:
        layers = list(ranked[:size])
        outcome = attempt(layers)
        ok = meets(outcome)
        result.attempts.append(Attempt(float_layers=layers, result=outcome, meets=ok))
        return ok

    missed = 0  # the largest prefix known to miss
    for size in doubling(limit):
        if run(size):
            met = size
            break
        missed = size
    else:
        return result
    while met - missed > 1:
        middle = (met + missed) // 2
        if run(middle):
            met = middle
        else:
            missed = middle
    return result
