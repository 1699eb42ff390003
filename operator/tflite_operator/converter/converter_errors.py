"""Read the TFLite converter's error text: which ops failed, of which kind, on which types.

Pure text parsing (plus the structured `errors` list a ConverterError carries); what each
finding means for the user is in known_failures.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tflite_operator.converter.tf_env import first_line


@dataclass(frozen=True)
class UnsupportedOps:
    """Ops the converter could not lower, parsed from its error."""

    flex: list[str]  # have a Select TF (Flex) kernel: ops: select-tf-ops fixes it
    custom: list[str]  # neither builtin nor Flex: only changing the model fixes it


_FLEX_LINE = re.compile(r"^\s*TF Select ops:\s*(.+)$", re.MULTILINE)
_CUSTOM_LINE = re.compile(r"^\s*Custom ops:\s*(.+)$", re.MULTILINE)
_OP_ERROR = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
# "Details:" lines of the summary: "\ttf.Mul(tensor<?x4xf64>, tensor<f64>) -> (tensor<?x4xf64>)"
_DETAIL_LINE = re.compile(r"^\s*tf\.(\w+)\((.*)$", re.MULTILINE)
_ELEMENT_TYPE = re.compile(r"Failed to convert element type '([^']+)'")

# MLIR element types TFLite builtins (almost) never compute on, by the name users know.
_UNUSUAL_TYPES = (
    ("xf64>", "float64"),
    ("<f64>", "float64"),
    ("tf_type.string", "string"),
    ("complex<", "complex"),
)


def unsupported_ops(error: BaseException) -> UnsupportedOps:
    """Parse which ops lack a builtin from the converter's error.

    The summary lines ("TF Select ops: A, B" / "Custom ops: C") say which kind each op is; the
    per-op lines ("'tf.A' op is neither a custom op nor a flex op") only that it failed, so
    they count as Flex-capable when no summary line is found. The structured `errors` list of
    ConverterError carries the same per-op information with an error code.
    """
    text = str(error)
    flex = _split_ops(_FLEX_LINE.findall(text))
    custom = _split_ops(_CUSTOM_LINE.findall(text))
    for data in getattr(error, "errors", None) or []:
        name = getattr(getattr(data, "operator", None), "name", "") or ""
        code = _error_code_name(data)
        op = name.removeprefix("tf.")
        if not op:
            continue
        if code == "ERROR_NEEDS_CUSTOM_OPS" and op not in custom:
            custom.append(op)
        elif code == "ERROR_NEEDS_FLEX_OPS" and op not in flex and op not in custom:
            flex.append(op)
    if not flex and not custom:
        flex = _split_ops(_OP_ERROR.findall(text))
    flex = [op for op in flex if op not in custom]
    return UnsupportedOps(flex=sorted(flex), custom=sorted(custom))


def unusual_types(error: BaseException) -> dict[str, list[str]]:
    """dtype (float64, string, complex) -> the failed ops computing on it, from "Details:"."""
    found: dict[str, list[str]] = {}
    for op, signature in _DETAIL_LINE.findall(str(error)):
        for marker, dtype in _UNUSUAL_TYPES:
            if marker in signature and op not in found.setdefault(dtype, []):
                found[dtype].append(op)
    return {dtype: sorted(ops) for dtype, ops in found.items() if ops}


def unconvertible_element_type(error: BaseException) -> str | None:
    """The MLIR element type the exporter has no TFLite type for ("Unsupported type")."""
    match = _ELEMENT_TYPE.search(str(error))
    return match.group(1) if match else None


def _error_code_name(data: Any) -> str:
    try:
        return data.ErrorCode.Name(data.error_code)
    except Exception:  # not the protobuf we expect: fall back to the message text
        return ""


def _split_ops(matches: list[str]) -> list[str]:
    ops: list[str] = []
    for match in matches:
        for op in match.split(","):
            op = op.strip().removeprefix("tf.")
            if op and op not in ops:
                ops.append(op)
    return ops


def meaningful_line(error: BaseException) -> str:
    """The first line that says what went wrong, skipping MLIR locations and TF boilerplate."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        match = re.search(r"\berror: (.+)$", line)
        if match:
            return match.group(1).strip()
    for line in lines:
        if not line.startswith(("loc(", "<unknown>", "^", "%", "WARNING")):
            return line[:500]
    return first_line(error)
