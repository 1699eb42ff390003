"""Building blocks shared by the spec's models: the wire model base, URIs and input dims.

Field names are camelCase on the wire (Kubernetes style) and snake_case in Python.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tflite_operator.api.errors import SpecError
from tflite_operator.storage.uris import parse_uri

MAX_URI = 1024
# Input names are as long as signature keys may be; 16 inputs keep the largest spec within the
# Job's environment (tests/operator/test_crd.py).
MAX_INPUT_NAME = 128
MAX_INPUTS = 16
# TFLite stores dims as int32.
MAX_DIM = 2**31 - 1


def _uri(value: str) -> str:
    # The same parser the converter uses, so the CLI refuses what a run would. In a cluster
    # the CRD also demands gs:// (controller/crd.py): local paths only make sense here.
    try:
        parse_uri(value)
    except SpecError as err:
        raise ValueError(f"must be gs://BUCKET/PATH or a local path; {err.message}") from None
    return value


# One input's dims, batch included; TFLite tensors have at most a handful of axes.
InputDims = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_DIM)]], Field(min_length=1, max_length=8)
]

# gs://bucket/prefix, or a local path (absolute, relative or file://) for runs outside a cluster.
Uri = Annotated[str, Field(min_length=1, max_length=MAX_URI), AfterValidator(_uri)]


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase dict, as it appears in a manifest (defaults left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
