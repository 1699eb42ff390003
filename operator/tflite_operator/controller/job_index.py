"""The operator's converter Jobs, in memory: a Kopf index fed by the Job watch.

Counting running Jobs and finding a conversion's Jobs read this instead of LISTing Jobs from
the apiserver on every call. The index is written by Kopf's event loop and read from handler
threads: reads copy the dict views with `list()`, which the GIL makes atomic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tflite_operator import KIND
from tflite_operator.controller import status as st
from tflite_operator.controller.job_builder import LABEL_GENERATION


@dataclass(frozen=True)
class JobInfo:
    namespace: str
    name: str
    owner_uid: str | None
    generation: int | None
    active: bool


def owner(job: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(name, uid) of the TFLiteConversion that controls the Job."""
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            return ref.get("name"), ref.get("uid")
    return None, None


def generation_of(job: Mapping[str, Any]) -> int | None:
    value = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_GENERATION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def index_entry(job: Mapping[str, Any]) -> dict[tuple[str, str | None], JobInfo]:
    """What the Kopf index keeps of one Job, keyed by (namespace, owning conversion)."""
    meta = job.get("metadata") or {}
    owner_name, owner_uid = owner(job)
    info = JobInfo(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        owner_uid=owner_uid,
        generation=generation_of(job),
        active=st.is_active(job),
    )
    return {(info.namespace, owner_name): info}


class JobIndex:
    """Read side of the index; empty until Kopf hands the index over at start-up."""

    def __init__(self) -> None:
        self._index: Mapping[Any, Any] = {}

    def attach(self, index: Mapping[Any, Any]) -> None:
        self._index = index

    def _all(self) -> list[JobInfo]:
        out: list[JobInfo] = []
        for key in list(self._index):
            store = self._index.get(key)
            if store is not None:
                out.extend(list(store))
        return out

    def of(self, namespace: str, conversion: str) -> list[JobInfo]:
        store = self._index.get((namespace, conversion))
        return list(store) if store is not None else []

    def active_names(self) -> list[tuple[str, str]]:
        return [(j.namespace, j.name) for j in self._all() if j.active]

    def all_names(self) -> list[tuple[str, str]]:
        return [(j.namespace, j.name) for j in self._all()]
