"""Kubernetes' own rules for the values a spec hands to the converter Job, in Python.

The apiserver checks these when the operator creates the Job; checked here (and as CEL in the
CRD, controller/crd.py) they fail at `kubectl apply` and in the CLI instead, naming the field.
Sources: k8s.io/apimachinery/pkg/util/validation (names), k8s.io/apimachinery/pkg/api/resource
(quantities) and pkg/apis/core/validation (container resources, tolerations), v1.37.

Each function returns None when the value is valid, else a message that says what a valid
value looks like (never a regex).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, Field

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# resource.Quantity's grammar: a signed decimal, then a binary/decimal SI suffix or an exponent.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(\d+\.?\d*|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}

# The lengths the apiserver allows, reused as the schema's maxLength bounds.
MAX_LABEL_VALUE = 63
MAX_SUBDOMAIN = 253
MAX_QUALIFIED_NAME = MAX_SUBDOMAIN + 1 + 63
MAX_QUANTITY = 64
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")

DNS_LABEL_HELP = "lowercase letters, digits and '-', starting and ending with a letter or digit"
SUBDOMAIN_HELP = (
    f"at most {MAX_SUBDOMAIN} characters of lowercase letters, digits, '-' and '.', starting "
    "and ending with a letter or digit (a Kubernetes object name, e.g. gcs-reader)"
)
LABEL_KEY_HELP = (
    "a label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 "
    "letters, digits, '-', '_' or '.' starting and ending with a letter or digit "
    "(e.g. cloud.google.com/gke-nodepool or pool)"
)
LABEL_VALUE_HELP = (
    "a label value: empty, or at most 63 letters, digits, '-', '_' or '.' starting and "
    "ending with a letter or digit"
)
QUANTITY_HELP = (
    "a non-negative quantity such as 500m, 2, 1.5, 512Mi or 4Gi (a number with an optional "
    "suffix m, k, M, G, T, Ki, Mi, Gi, Ti or an exponent like 1e3)"
)
RESOURCE_NAME_HELP = (
    "cpu, memory, ephemeral-storage, or an extended resource <domain>/<name> such as "
    "nvidia.com/gpu (hugepages are not offered to the converter)"
)


def dns1123_label_problem(value: str) -> str | None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        return f"must be {DNS_LABEL_HELP}"
    return None


def dns1123_subdomain_problem(value: str) -> str | None:
    parts = value.split(".")
    if len(value) > MAX_SUBDOMAIN or not all(_DNS_LABEL.match(p) for p in parts):
        return f"must be {SUBDOMAIN_HELP}"
    return None


def label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    bad_prefix = slash and (not prefix or dns1123_subdomain_problem(prefix) is not None)
    if bad_prefix or len(name) > 63 or not _NAME_PART.match(name):
        return f"must be {LABEL_KEY_HELP}"
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > MAX_LABEL_VALUE or not _NAME_PART.match(value)):
        return f"must be {LABEL_VALUE_HELP}"
    return None


def parse_quantity(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity string, or None when the apiserver would refuse it."""
    m = _QUANTITY.match(text) if len(text) <= MAX_QUANTITY else None
    if not m:
        return None
    suffix = m["suffix"] or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(m["num"]) * Decimal(10) ** int(suffix[1:])
        return Decimal(m["num"]) * _SUFFIX[suffix]
    except (InvalidOperation, OverflowError):
        return None


def is_extended_resource(name: str) -> bool:
    """`<domain>/<name>` outside kubernetes.io: a device plugin's resource (not overcommitted)."""
    return (
        "/" in name
        and "kubernetes.io/" not in name
        and not name.startswith("requests.")
        and label_key_problem(name) is None
    )


def resource_name_problem(name: str) -> str | None:
    if name in STANDARD_RESOURCES or is_extended_resource(name):
        return None
    return f"{name!r} is not a container resource; use {RESOURCE_NAME_HELP}"


def quantity_problem(name: str, text: str) -> str | None:
    value = parse_quantity(text)
    if value is None or value < 0:
        return f"{name}: {text!r} is not {QUANTITY_HELP}"
    if is_extended_resource(name) and value != value.to_integral_value():
        return f"{name}: {text!r} must be a whole number (extended resources are counted)"
    return None


def requirements_problems(requests: dict[str, str], limits: dict[str, str]) -> list[str]:
    """Requests within limits; extended resources need a limit equal to the request."""
    problems = []
    for name, text in requests.items():
        req, lim = parse_quantity(text), parse_quantity(limits.get(name, ""))
        if req is None:
            continue  # reported by quantity_problem
        if is_extended_resource(name):
            if lim is None or req != lim:
                problems.append(
                    f"requests[{name}] must equal limits[{name}]: extended resources cannot "
                    "be overcommitted; set the same value in both"
                )
        elif lim is not None and req > lim:
            problems.append(
                f"requests[{name}] ({text}) is more than limits[{name}] ({limits[name]}); "
                "lower the request or raise the limit"
            )
    return problems


def resources_problems(requests: dict[str, str], limits: dict[str, str]) -> list[str]:
    problems = []
    for kind, values in (("requests", requests), ("limits", limits)):
        for name, text in values.items():
            if problem := resource_name_problem(name) or quantity_problem(name, text):
                problems.append(f"{kind}: {problem}")
    return problems + requirements_problems(requests, limits)


def toleration_problem(
    key: str | None,
    operator: str | None,
    value: str | None,
    effect: str | None,
    seconds: int | None,
) -> str | None:
    """pkg/apis/core/validation.ValidateTolerations, in the order it checks."""
    if key and (problem := label_key_problem(key)):
        return f"toleration key {key!r} {problem}"
    if not key and operator != "Exists":
        return (
            "a toleration without key must have operator: Exists (it then tolerates every "
            "taint); set key, or operator: Exists"
        )
    if seconds is not None and effect != "NoExecute":
        return (
            "tolerationSeconds only applies to effect: NoExecute; set that effect or remove "
            "tolerationSeconds"
        )
    if operator == "Exists" and value:
        return (
            "a toleration with operator: Exists matches any value; remove value or use "
            "operator: Equal"
        )
    if value and (problem := label_value_problem(value)):
        return f"toleration value {value!r} {problem}"
    return None


def node_selector_problem(selector: dict[str, str]) -> str | None:
    for key, label in selector.items():
        if problem := label_key_problem(key):
            return f"key {key!r} {problem}"
        if problem := label_value_problem(label):
            return f"value {label!r} of {key!r} {problem}"
    return None


def valid(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic validator raising problem_of's message (pydantic adds the field's path)."""

    def check(value):  # type: ignore[no-untyped-def]
        if problem := problem_of(value):
            raise ValueError(problem if isinstance(value, dict) else f"{problem} (got {value!r})")
        return value

    return AfterValidator(check)


# Types for the spec model, bounded so that the spec fits the Job's environment.
ObjectName = Annotated[
    str, Field(min_length=1, max_length=MAX_SUBDOMAIN), valid(dns1123_subdomain_problem)
]
ResourceList = Annotated[
    dict[
        Annotated[str, Field(max_length=MAX_QUALIFIED_NAME)],
        Annotated[str, Field(max_length=MAX_QUANTITY)],
    ],
    Field(max_length=8),
]
NodeSelector = Annotated[
    dict[
        Annotated[str, Field(max_length=MAX_QUALIFIED_NAME)],
        Annotated[str, Field(max_length=MAX_LABEL_VALUE)],
    ],
    Field(max_length=32),
    valid(node_selector_problem),
]
