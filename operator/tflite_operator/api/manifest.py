"""Reading TFLiteConversion manifests (YAML or JSON) into the spec model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tflite_operator import API_GROUP, KIND
from tflite_operator.api.errors import SpecError
from tflite_operator.api.spec import ConversionSpec


def describe_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"spec.{loc}: {msg}")
    return "\n".join(lines)


def parse_spec(data: dict[str, Any]) -> ConversionSpec:
    try:
        return ConversionSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(describe_validation_error(err)) from None


def spec_from_manifest(doc: dict[str, Any]) -> tuple[str, ConversionSpec]:
    """(metadata.name, spec) of one TFLiteConversion document."""
    if not isinstance(doc, dict):
        raise SpecError("the manifest is not a YAML mapping; expected a TFLiteConversion object")
    kind = doc.get("kind")
    if kind != KIND:
        raise SpecError(f"kind is {kind!r}; expected {KIND!r}")
    api_version = str(doc.get("apiVersion", ""))
    if api_version.split("/")[0] != API_GROUP:
        raise SpecError(f"apiVersion is {api_version!r}; expected {API_GROUP}/v1alpha1")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise SpecError("the manifest has no spec mapping")
    name = str((doc.get("metadata") or {}).get("name") or "conversion")
    return name, parse_spec(spec)


def load_manifest(path: str | Path) -> tuple[str, ConversionSpec]:
    p = Path(path)
    try:
        text = p.read_text() if str(path) != "-" else sys.stdin.read()
    except FileNotFoundError:
        raise SpecError(f"manifest {path} does not exist; pass the path of a YAML file") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise SpecError(f"manifest {path} is not valid YAML: {err}") from None
    matching = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if len(matching) != 1:
        raise SpecError(
            f"manifest {path} holds {len(matching)} {KIND} documents; pass a file with exactly one"
        )
    return spec_from_manifest(matching[0])
