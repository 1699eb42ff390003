"""Writing and deleting outputs on gs:// so that the output folder always holds one whole set.

publish():
- nothing there yet: upload straight to the final names, files then reports, each with
  if_generation_match=0; on a failure what this call wrote is deleted again.
- something there (overwrite, or a retry's own partial set): stage the new set under
  <output>/.tflite-operator-staging/<run>/new/ (the long uploads, while the old set stays
  untouched), copy the objects to be replaced to .../old/ (server-side, pinned to the
  generation we checked), then promote: server-side copies to the final names, reports last,
  each only if the destination is still the generation we checked. If promotion fails, the
  names promoted so far get their old objects back (or are removed when they are new), so the
  folder again holds the old set. The staging objects are removed at the end.

GCS has no multi-object transaction, so between the first and the last promotion copy the
folder holds new files next to the old reports (seconds: copies within a bucket move no data).
Every object's run tag (ownership.py) says which set it belongs to.

delete_owned(): only objects tagged with the resource's uid, each deleted with
if_generation_match, so one rewritten since we read its tags is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from google.api_core import exceptions as gexc
from google.cloud import storage

from tflite_operator.api.errors import SpecError
from tflite_operator.storage.base import (
    Payload,
    outputs_exist_error,
    publish_plan,
)
from tflite_operator.storage.gcs_transfer import copy_object, delete_generations, upload_group
from tflite_operator.storage.ownership import (
    STAGING_DIR,
    ObjectInfo,
    Owner,
    foreign,
    new_run_token,
    owned_by,
    tags,
)
from tflite_operator.storage.uris import Location

if TYPE_CHECKING:
    from tflite_operator.storage.gcs import GCSStorage


def publish(
    store: GCSStorage,
    loc: Location,
    files: Mapping[str, Payload],
    last: Mapping[str, Payload],
    overwrite: bool,
    owner: Owner | None,
) -> dict[str, str]:
    names = publish_plan(files, last)
    bucket = store.client.bucket(loc.bucket)
    run = new_run_token()
    final = {name: f"{loc.prefix}{name}" for name in names}
    # The reports name the whole set, so a retry can tell a complete set from a partial one.
    meta = {name: tags(owner, run, names if name in last else None) for name in names}

    existing = store._existing(loc, names)
    if not overwrite and (taken := foreign(existing, owner)):
        raise outputs_exist_error(loc, taken)
    if existing:
        _publish_staged(store, bucket, loc, files, last, meta, existing, run)
    else:
        _publish_direct(store, bucket, loc, files, last, meta, final)
    return {name: f"gs://{loc.bucket}/{final[name]}" for name in names}


def _publish_direct(
    store: GCSStorage,
    bucket: storage.Bucket,
    loc: Location,
    files: Mapping[str, Payload],
    last: Mapping[str, Payload],
    meta: dict[str, dict[str, str]],
    final: dict[str, str],
) -> None:
    created: dict[str, int] = {}  # key -> generation this call wrote
    try:
        upload_group(store, bucket, loc, final, files, meta, created)
        upload_group(store, bucket, loc, final, last, meta, created)
    except BaseException as exc:
        leftovers = delete_generations(store, bucket, created)
        _raise_publish_error(store, exc, loc, leftovers)


def _publish_staged(
    store: GCSStorage,
    bucket: storage.Bucket,
    loc: Location,
    files: Mapping[str, Payload],
    last: Mapping[str, Payload],
    meta: dict[str, dict[str, str]],
    existing: Mapping[str, ObjectInfo],
    run: str,
) -> None:
    stage = f"{loc.prefix}{STAGING_DIR}/{run}"
    new_key = {name: f"{stage}/new/{name}" for name in [*files, *last]}
    old_key = {name: f"{stage}/old/{name}" for name in existing}
    backups = set(old_key.values())
    written: dict[str, int] = {}  # staging key -> generation, removed at the end
    keep_backup = False
    try:
        upload_group(store, bucket, loc, new_key, files, meta, written)
        upload_group(store, bucket, loc, new_key, last, meta, written)
        for name, info in existing.items():
            written[old_key[name]] = copy_object(
                store, bucket, loc, final_key(loc, name), info.generation, old_key[name], 0
            )
        promoted: dict[str, int] = {}
        try:
            for name in [*files, *last]:  # reports last
                before = existing[name].generation if name in existing else 0
                source = new_key[name]
                promoted[name] = copy_object(
                    store, bucket, loc, source, written[source], final_key(loc, name), before
                )
        except BaseException as exc:
            leftovers = _restore(store, bucket, loc, promoted, existing, old_key)
            keep_backup = bool(leftovers)
            if leftovers:
                leftovers.append(f"(the old outputs are kept under gs://{loc.bucket}/{stage}/old/)")
            _raise_publish_error(store, exc, loc, leftovers)
    except BaseException as exc:
        _raise_publish_error(store, exc, loc, [])
    finally:
        delete_generations(
            store,
            bucket,
            {k: g for k, g in written.items() if not (keep_backup and k in backups)},
        )


def final_key(loc: Location, name: str) -> str:
    return f"{loc.prefix}{name}"


def _restore(
    store: GCSStorage,
    bucket: storage.Bucket,
    loc: Location,
    promoted: Mapping[str, int],
    existing: Mapping[str, ObjectInfo],
    old_key: Mapping[str, str],
) -> list[str]:
    """Undo a partial promotion: each promoted name gets its old object back, or goes."""
    leftovers = []
    for name, generation in promoted.items():
        key = final_key(loc, name)
        try:
            if name in existing:
                # Only over our own write: if someone replaced it since, theirs stays.
                copy_object(store, bucket, loc, old_key[name], None, key, generation)
            else:
                bucket.blob(key).delete(if_generation_match=generation, retry=store.retry)
        except (gexc.NotFound, gexc.PreconditionFailed):
            pass
        except Exception:
            leftovers.append(f"gs://{loc.bucket}/{key}")
    return leftovers


def _raise_publish_error(
    store: GCSStorage, exc: BaseException, loc: Location, leftovers: list[str]
) -> NoReturn:
    """Re-raise exc as our error (cause and fix), naming what could not be cleaned up."""
    if not isinstance(exc, Exception):
        raise exc  # KeyboardInterrupt and friends go on as they are, after the cleanup
    error = store._error(exc, loc, "storage.objects.create", "publishing to")
    if leftovers:
        error = type(error)(
            f"{error.message}; could not restore or remove {', '.join(leftovers)}: fix them by hand"
        )
    if error is exc:
        raise exc
    raise error from exc


# -- deleting -------------------------------------------------------------------------------


def delete_owned(
    store: GCSStorage, loc: Location, names: list[str], uid: str
) -> tuple[list[str], list[str]]:
    if not uid:
        raise SpecError(
            f"cannot tell which objects at {loc} this resource wrote: no resource uid was "
            "given (the operator sets it in the cleanup Job); nothing was deleted"
        )
    bucket = store.client.bucket(loc.bucket)
    deleted: list[str] = []
    kept: list[str] = []
    targets = dict(store._existing(loc, names))
    # Staging objects of a publish that died half way (SIGKILL: no cleanup ran).
    staging = Location(scheme="gs", bucket=loc.bucket, key=f"{loc.prefix}{STAGING_DIR}")
    try:
        for blob in store.client.list_blobs(loc.bucket, prefix=staging.prefix, retry=store.retry):
            targets[blob.name[len(loc.prefix) :]] = ObjectInfo(
                int(blob.generation or 0), dict(blob.metadata or {})
            )
    except gexc.NotFound:
        return [], []  # no bucket: nothing to delete
    except Exception as exc:
        raise store._error(exc, staging, "storage.objects.list", "listing") from exc
    for name, info in sorted(targets.items()):
        if not owned_by(info, uid):
            kept.append(name)
            continue
        obj = Location(scheme="gs", bucket=loc.bucket, key=final_key(loc, name))
        try:
            bucket.blob(obj.key).delete(if_generation_match=info.generation, retry=store.retry)
            deleted.append(name)
        except gexc.NotFound:
            pass  # already gone: the goal is reached
        except gexc.PreconditionFailed:
            kept.append(name)  # rewritten since we read its tags: no longer ours to delete
        except Exception as exc:
            raise store._error(exc, obj, "storage.objects.delete", "deleting") from exc
    return deleted, kept
