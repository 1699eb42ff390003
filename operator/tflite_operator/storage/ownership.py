"""Who wrote an output: the tags every published object carries, and what they let us decide.

Pure: no I/O. A converter Job tags each object it publishes (GCS custom metadata) with the
resource's uid and generation and a token for this one attempt; reports (written last) also
carry the names of the whole set. From that:

- a retry of the same generation recognises a complete set it wrote (pod died after
  publishing) and succeeds without converting again, or replaces a partial set of its own;
- a cleanup deletes only objects whose uid is its resource's, never another resource's that
  happens to share spec.output.uri.

CLI runs have no owner: their objects carry only the run token, so no resource ever takes them
for its own. Local paths record no tags at all (see LocalStorage).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# GCS custom metadata keys (x-goog-meta-*): lowercase, one spelling for writer and reader.
UID_KEY = "tflite-operator-uid"
GENERATION_KEY = "tflite-operator-generation"
RUN_KEY = "tflite-operator-run"
SET_KEY = "tflite-operator-set"

# Where a replacing publish stages the new set and keeps a copy of the old one, below the
# output folder itself: a converter allowed to write the outputs may write there too (IAM
# conditions and managed folders are usually per prefix), and a dot keeps it out of the way.
STAGING_DIR = ".tflite-operator-staging"


@dataclass(frozen=True)
class Owner:
    """The resource a converter Job runs for (UID_ENV and GENERATION_ENV of the Job)."""

    uid: str
    generation: int


@dataclass(frozen=True)
class ObjectInfo:
    """An existing output object: its GCS generation (0 for local files) and its tags."""

    generation: int
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def uid(self) -> str | None:
        return self.metadata.get(UID_KEY) or None

    @property
    def run(self) -> str | None:
        return self.metadata.get(RUN_KEY) or None


def new_run_token() -> str:
    return secrets.token_hex(8)


def tags(owner: Owner | None, run: str, set_names: Iterable[str] | None = None) -> dict[str, str]:
    """The metadata for one published object; set_names only on the reports (written last)."""
    out = {RUN_KEY: run}
    if owner is not None:
        out[UID_KEY] = owner.uid
        out[GENERATION_KEY] = str(owner.generation)
    if set_names is not None:
        out[SET_KEY] = ",".join(sorted(set_names))
    return out


def is_ours(info: ObjectInfo, owner: Owner | None) -> bool:
    """Written by this resource at this generation (so a retry of it may replace it)."""
    if owner is None:
        return False  # a CLI run owns nothing: outputs are refused unless overwrite
    return info.uid == owner.uid and info.metadata.get(GENERATION_KEY) == str(owner.generation)


def owned_by(info: ObjectInfo, uid: str) -> bool:
    """Written by the resource with this uid, at any of its generations (cleanup's test)."""
    return bool(uid) and info.uid == uid


def foreign(existing: Mapping[str, ObjectInfo], owner: Owner | None) -> list[str]:
    """The names publishing must not replace without spec.output.overwrite."""
    return sorted(name for name, info in existing.items() if not is_ours(info, owner))


def complete_set(existing: Mapping[str, ObjectInfo], owner: Owner | None, report: str) -> bool:
    """True when report is ours and every name of its set is there, from the same attempt.

    The report is written last and names its whole set, so this is how a retry tells "my
    earlier attempt published everything" from "it died half way" (then it republishes).
    """
    info = existing.get(report)
    if info is None or not is_ours(info, owner) or info.run is None:
        return False
    names = [n for n in info.metadata.get(SET_KEY, "").split(",") if n]
    if report not in names:
        return False
    return all(n in existing and existing[n].run == info.run for n in names)
