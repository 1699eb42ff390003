"""The spec model's side of the malformed manifests (the apiserver's side needs the control
plane: test_operator_controlplane.py)."""

from __future__ import annotations

import pytest
from malformed_cases import BASE, CASES, Case

from tflite_operator.api.errors import SpecError
from tflite_operator.api.manifest import parse_spec


def test_the_base_spec_is_valid():
    parse_spec(BASE)


def test_there_are_at_least_ten_cases_with_distinct_fields():
    assert len(CASES) >= 10
    assert len({str(c.k8s) for c in CASES}) >= 10


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_spec_model_refuses_it_naming_the_field(case: Case):
    with pytest.raises(SpecError) as err:
        parse_spec(case.spec)
    assert case.pydantic in str(err.value)
