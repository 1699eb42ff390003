"""The text formats of operator settings, as an environment variable or a flag gives them.

Pure functions: text in, a plain value out, or a ValueError whose message starts with what a
valid value looks like ("must be ..."); settings.py puts the variable's or flag's name before
it. A value that is not text (a Python caller's, or one already parsed) is not seen here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Spellings of "no value" for the optional numbers (JOB_TTL_SECONDS=none keeps Jobs).
NONE_WORDS = ("", "none", "off")


def _json(text: str, shape: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"must be {shape}; not valid JSON: {err}") from None


def command(text: str) -> list[str]:
    """A JSON list: a command is never split on spaces (there is no shell to quote for)."""
    shape = 'a non-empty JSON list of strings, e.g. ["tflite-operator", "job"]'
    value = _json(text, shape)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be {shape}")
    return value


def env_pairs(value: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]) -> dict:
    """`{"K": "V"}` JSON, or `K=V,K2=V2` for the common case of a few plain values.

    A list (a repeated flag after the environment's value) is merged in order: later wins.
    """
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        merged: dict[str, str] = {}
        for item in value:
            merged |= env_pairs(item)
        return merged
    text = value.strip()
    if not text:
        return {}
    shape = 'KEY=VALUE pairs separated by commas, or a JSON object like {"KEY": "VALUE"}'
    if text.startswith("{"):
        obj = _json(text, shape)
        if not isinstance(obj, dict):
            raise ValueError(f"must be {shape}")
        return env_pairs(obj)
    out = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"must be {shape}; {item!r} is not KEY=VALUE")
        out[key.strip()] = val
    return out


def resources(text: str) -> dict[str, dict[str, str]]:
    shape = 'a JSON object like {"requests": {"cpu": "1"}, "limits": {"memory": "4Gi"}}'
    value = _json(text, shape)
    if (
        not isinstance(value, dict)
        or set(value) - {"requests", "limits"}
        or not all(isinstance(v, dict) for v in value.values())
    ):
        raise ValueError(f"must be {shape}")
    # Quantities are strings in Kubernetes; a chart value `cpu: 1` arrives as a JSON number.
    return {k: {str(r): str(q) for r, q in v.items()} for k, v in value.items()}


def json_object(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    shape = 'a JSON object of strings, e.g. {"cloud.google.com/gke-nodepool": "converters"}'
    value = _json(text, shape)
    if not isinstance(value, dict):
        raise ValueError(f"must be {shape}")
    return {str(k): str(v) for k, v in value.items()}


def json_objects(text: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    shape = 'a JSON list of objects (tolerations), e.g. [{"key": "x", "operator": "Exists"}]'
    value = _json(text, shape)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"must be {shape}")
    return value


def comma_list(value: str | Sequence[str]) -> list[str]:
    """`a,b` from the environment; a repeated flag gives a list, each item may be `a,b` too."""
    items = [value] if isinstance(value, str) else value
    return [n.strip() for item in items for n in item.split(",") if n.strip()]


def empty_is_none(text: str) -> str | None:
    return text or None


def none_word(text: str) -> str | None:
    """None for "none"/"off"/""; other text is left for the integer check."""
    return None if text.strip().lower() in NONE_WORDS else text


def empty_is_false(text: str) -> str | bool:
    """An empty variable is unset; other text is left for the boolean check (true/false, 1/0,
    yes/no, on/off)."""
    return text if text.strip() else False
