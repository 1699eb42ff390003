"""pydantic's JSON Schema as a structural OpenAPI v3 schema, the form a CRD needs.

$refs are inlined, the `X | None` unions collapsed (a missing field is the None), exclusive
bounds rewritten in the OpenAPI 3.0 form.
"""

from __future__ import annotations

from typing import Any

# Keys that carry over from JSON Schema to the CRD schema unchanged.
_KEEP = (
    "type",
    "format",
    "description",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)


class SchemaError(ValueError):
    pass


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**defs[name], **siblings}
    return node


def structural(node: dict[str, Any], defs: dict[str, Any], where: str = "") -> dict[str, Any]:
    """One JSON Schema node (pydantic's dialect) as a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            # A real union has no structural form; the model must not use one.
            raise SchemaError(f"{where or 'root'}: unions other than X | None are not supported")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**_resolve(branches[0], defs), **outer}
    if "allOf" in node:
        raise SchemaError(f"{where}: allOf is not supported")

    out: dict[str, Any] = {k: node[k] for k in _KEEP if k in node}
    if "exclusiveMinimum" in node:
        out["minimum"] = node["exclusiveMinimum"]
        out["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        out["maximum"] = node["exclusiveMaximum"]
        out["exclusiveMaximum"] = True
    if "enum" in node and "type" not in out:
        out["type"] = "string"

    kind = out.get("type")
    if kind == "object":
        props = node.get("properties") or {}
        if props:
            out["properties"] = {
                key: structural(sub, defs, f"{where}.{key}") for key, sub in props.items()
            }
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            if props:
                raise SchemaError(f"{where}: properties and additionalProperties together")
            out["additionalProperties"] = structural(extra, defs, f"{where}.*")
        elif not props:
            # dict[str, Any]: an open object the apiserver must keep as it is.
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        out["items"] = structural(node["items"], defs, f"{where}[]")
    elif kind is None:
        raise SchemaError(f"{where}: no type")

    if "default" in node and node["default"] is not None:
        default = node["default"]
        if kind == "object":
            if out.get("required"):
                raise SchemaError(f"{where}: a default for an object with required fields")
            # `{}` and the apiserver fills the nested defaults in: the same as pydantic does.
            default = {}
        out["default"] = default
    return out
