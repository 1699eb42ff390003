"""Operator configuration: environment variables, overridden by command-line flags.

pydantic-settings is not a dependency, so this is a plain frozen dataclass with one parser per
source. Every setting has an environment variable (for the Deployment) and a flag (for humans).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

# The converter target of the Dockerfile (the operator image has no TensorFlow).
DEFAULT_IMAGE = "ghcr.io/tflite-operator/tflite-converter:0.1.0"
DEFAULT_COMMAND = ("tflite-operator", "job")
# The converter loads TensorFlow and holds a SavedModel and its variants in memory.
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"memory": "4Gi"},
}


@dataclass(frozen=True)
class Settings:
    converter_image: str = DEFAULT_IMAGE
    converter_command: tuple[str, ...] = DEFAULT_COMMAND
    image_pull_policy: str = "IfNotPresent"
    # Used when spec.job.resources is not set.
    default_resources: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: DEFAULT_RESOURCES
    )
    # Extra environment for converter pods, e.g. STORAGE_EMULATOR_HOST or proxy settings.
    converter_extra_env: Mapping[str, str] = field(default_factory=dict)
    # The restricted Pod Security Standard needs a non-root user; the image's user is 65532.
    run_as_user: int = 65532
    # Placement and identity of converter pods when the spec's `job` leaves them unset.
    converter_node_selector: Mapping[str, str] = field(default_factory=dict)
    converter_tolerations: tuple[Mapping[str, Any], ...] = ()
    converter_service_account: str | None = None
    # A Secret with a GCS service-account key, for clusters without Workload Identity.
    gcs_key_secret: str | None = None
    gcs_key_secret_key: str = "key.json"
    # Empty: the whole cluster.
    namespaces: tuple[str, ...] = ()
    # 0 means no limit.
    max_concurrent_jobs: int = 4
    # How often a queued conversion asks again for a slot.
    queue_retry_seconds: float = 10.0
    # How often a running conversion re-reads its Job: a safety net for missed watch events
    # and for a Job deleted by hand.
    resync_seconds: float = 60.0
    # None keeps finished Jobs (and their pods' logs) forever.
    job_ttl_seconds: int | None = 86400
    # 0 disables the metrics endpoint.
    metrics_port: int = 9090
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    # None: standalone (one replica). A name: Kopf peering between replicas.
    peering: str | None = None
    verbose: bool = False
    debug: bool = False

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


ENV_VARS: dict[str, str] = {
    "converter_image": "CONVERTER_IMAGE",
    "converter_command": "CONVERTER_COMMAND",
    "image_pull_policy": "CONVERTER_IMAGE_PULL_POLICY",
    "default_resources": "CONVERTER_RESOURCES",
    "converter_extra_env": "CONVERTER_EXTRA_ENV",
    "run_as_user": "CONVERTER_RUN_AS_USER",
    "converter_node_selector": "CONVERTER_NODE_SELECTOR",
    "converter_tolerations": "CONVERTER_TOLERATIONS",
    "converter_service_account": "CONVERTER_SERVICE_ACCOUNT",
    "gcs_key_secret": "CONVERTER_GCS_KEY_SECRET",
    "gcs_key_secret_key": "CONVERTER_GCS_KEY_SECRET_KEY",
    "namespaces": "WATCH_NAMESPACES",
    "max_concurrent_jobs": "MAX_CONCURRENT_JOBS",
    "queue_retry_seconds": "QUEUE_RETRY_SECONDS",
    "resync_seconds": "RESYNC_SECONDS",
    "job_ttl_seconds": "JOB_TTL_SECONDS",
    "metrics_port": "METRICS_PORT",
    "liveness_endpoint": "LIVENESS_ENDPOINT",
    "peering": "PEERING_NAME",
    "verbose": "OPERATOR_VERBOSE",
    "debug": "OPERATOR_DEBUG",
}


class SettingsError(ValueError):
    pass


def _json_or_list(text: str, what: str) -> tuple[str, ...]:
    """A JSON list of strings; a command is never split on spaces (no shell parsing)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise SettingsError(
            f'{what} must be a JSON list of strings, e.g. ["tflite-operator", "job"]'
        ) from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{what} must be a non-empty JSON list of strings")
    return tuple(value)


def parse_env_pairs(text: str, what: str) -> dict[str, str]:
    """`{"K": "V"}` JSON, or `K=V,K2=V2` for the common case of a few plain values."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise SettingsError(f"{what} is not valid JSON: {err}") from None
        if not isinstance(value, dict):
            raise SettingsError(f"{what} must be a JSON object of strings")
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{what}: {item!r} is not KEY=VALUE")
        out[key.strip()] = val
    return out


def _resources(text: str, what: str) -> dict[str, dict[str, str]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise SettingsError(f'{what} must look like {{"requests": {{...}}, "limits": {{...}}}}')
    return {k: {str(r): str(q) for r, q in v.items()} for k, v in value.items()}


def _json_object(text: str, what: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{what} must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def _json_list_of_objects(text: str, what: str) -> tuple[dict[str, Any], ...]:
    if not text.strip():
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SettingsError(f"{what} must be a JSON list of objects (Kubernetes tolerations)")
    return tuple(value)


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _optional_int(text: str, what: str) -> int | None:
    if text.strip().lower() in ("", "none", "off"):
        return None
    return _int(text, what)


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{what} must be an integer, got {text!r}") from None


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{what} must be a number, got {text!r}") from None


def _namespaces(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


_PARSERS: dict[str, Any] = {
    "converter_command": _json_or_list,
    "default_resources": _resources,
    "converter_extra_env": parse_env_pairs,
    "run_as_user": _int,
    "converter_node_selector": _json_object,
    "converter_tolerations": _json_list_of_objects,
    "converter_service_account": lambda t, _w: t or None,
    "gcs_key_secret": lambda t, _w: t or None,
    "namespaces": lambda t, _w: _namespaces(t),
    "max_concurrent_jobs": _int,
    "queue_retry_seconds": _float,
    "resync_seconds": _float,
    "job_ttl_seconds": _optional_int,
    "metrics_port": _int,
    "liveness_endpoint": lambda t, _w: t or None,
    "peering": lambda t, _w: t or None,
    "verbose": lambda t, _w: _bool(t),
    "debug": lambda t, _w: _bool(t),
}


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        if var in environ:
            parse = _PARSERS.get(name, lambda t, _w: t)
            values[name] = parse(environ[var], var)
    return check(Settings(**values))


def check(s: Settings) -> Settings:
    if s.max_concurrent_jobs < 0:
        raise SettingsError("max concurrent jobs must be 0 (no limit) or more")
    if s.job_ttl_seconds is not None and s.job_ttl_seconds < 0:
        raise SettingsError("job TTL must be 0 or more seconds")
    if s.queue_retry_seconds <= 0 or s.resync_seconds <= 0:
        raise SettingsError("queue retry and resync intervals must be more than 0 seconds")
    if s.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise SettingsError("image pull policy must be Always, IfNotPresent or Never")
    if not 0 <= s.metrics_port <= 65535:
        raise SettingsError("metrics port must be 0 (off) to 65535")
    return s


def build_parser() -> argparse.ArgumentParser:
    env = ENV_VARS
    p = argparse.ArgumentParser(
        prog="tflite-operator operator",
        description="Run the TFLiteConversion operator. Every flag has an environment variable "
        "(shown in brackets); flags win.",
    )
    p.add_argument("--converter-image", help=f"converter Job image [{env['converter_image']}]")
    p.add_argument(
        "--converter-command",
        metavar="JSON",
        help=f'converter command as a JSON list (default ["tflite-operator", "job"]) '
        f"[{env['converter_command']}]",
    )
    p.add_argument(
        "--image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        help=f"[{env['image_pull_policy']}]",
    )
    p.add_argument(
        "--converter-resources",
        metavar="JSON",
        help='default {"requests": {...}, "limits": {...}} when spec.job.resources is unset '
        f"[{env['default_resources']}]",
    )
    p.add_argument(
        "--converter-env",
        action="append",
        metavar="KEY=VALUE",
        help="extra environment for converter pods, e.g. STORAGE_EMULATOR_HOST=host:port; "
        f"repeatable [{env['converter_extra_env']}: JSON object or K=V,K=V]",
    )
    p.add_argument("--run-as-user", type=int, help=f"converter pods' uid [{env['run_as_user']}]")
    p.add_argument(
        "--converter-node-selector",
        metavar="JSON",
        help=f"converter pods' nodeSelector when spec.job.nodeSelector is unset "
        f"[{env['converter_node_selector']}]",
    )
    p.add_argument(
        "--converter-tolerations",
        metavar="JSON",
        help=f"converter pods' tolerations (JSON list) when spec.job.tolerations is unset "
        f"[{env['converter_tolerations']}]",
    )
    p.add_argument(
        "--converter-service-account",
        metavar="NAME",
        help=f"converter pods' ServiceAccount when spec.job.serviceAccountName is unset "
        f"[{env['converter_service_account']}]",
    )
    p.add_argument(
        "--gcs-key-secret",
        metavar="NAME[:KEY]",
        help=f"a Secret holding a GCS service-account key (KEY default key.json), mounted "
        f"read-only and named by GOOGLE_APPLICATION_CREDENTIALS "
        f"[{env['gcs_key_secret']}, {env['gcs_key_secret_key']}]",
    )
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help=f"watch this namespace; repeatable; default: all [{env['namespaces']}: comma list]",
    )
    p.add_argument(
        "--max-concurrent-jobs",
        type=int,
        help=f"running converter Jobs at most; more wait as Queued; 0: no limit (default 4) "
        f"[{env['max_concurrent_jobs']}]",
    )
    p.add_argument(
        "--queue-retry-seconds",
        type=float,
        help=f"how often a queued conversion retries (default 10) [{env['queue_retry_seconds']}]",
    )
    p.add_argument(
        "--resync-seconds",
        type=float,
        help=f"how often a running conversion re-reads its Job (default 60) "
        f"[{env['resync_seconds']}]",
    )
    p.add_argument(
        "--job-ttl-seconds",
        help=f"delete finished Jobs after this long; 'none' keeps them (default 86400) "
        f"[{env['job_ttl_seconds']}]",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help=f"Prometheus metrics port; 0: off (default 9090) [{env['metrics_port']}]",
    )
    p.add_argument(
        "--liveness",
        dest="liveness_endpoint",
        metavar="URL",
        help=f"Kopf liveness endpoint (default http://0.0.0.0:8080/healthz); '' turns it off "
        f"[{env['liveness_endpoint']}]",
    )
    p.add_argument(
        "--peering",
        metavar="NAME",
        help=f"Kopf peering name for several replicas; default standalone [{env['peering']}]",
    )
    p.add_argument("--verbose", action="store_true", default=None, help=f"[{env['verbose']}]")
    p.add_argument("--debug", action="store_true", default=None, help=f"[{env['debug']}]")
    return p


def from_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Environment first, then the flags given on the command line."""
    base = from_env(environ)
    args = build_parser().parse_args(list(argv))
    over: dict[str, Any] = {}
    simple = (
        "converter_image",
        "image_pull_policy",
        "run_as_user",
        "max_concurrent_jobs",
        "queue_retry_seconds",
        "resync_seconds",
        "metrics_port",
        "peering",
        "verbose",
        "debug",
    )
    for name in simple:
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    if args.converter_command is not None:
        over["converter_command"] = _json_or_list(args.converter_command, "--converter-command")
    if args.converter_resources is not None:
        over["default_resources"] = _resources(args.converter_resources, "--converter-resources")
    if args.converter_env:
        extra = dict(base.converter_extra_env)
        for item in args.converter_env:
            extra.update(parse_env_pairs(item, "--converter-env"))
        over["converter_extra_env"] = extra
    if args.namespaces:
        over["namespaces"] = tuple(args.namespaces)
    if args.converter_node_selector is not None:
        over["converter_node_selector"] = _json_object(
            args.converter_node_selector, "--converter-node-selector"
        )
    if args.converter_tolerations is not None:
        over["converter_tolerations"] = _json_list_of_objects(
            args.converter_tolerations, "--converter-tolerations"
        )
    if args.converter_service_account is not None:
        over["converter_service_account"] = args.converter_service_account or None
    if args.gcs_key_secret is not None:
        name, _, key = args.gcs_key_secret.partition(":")
        over["gcs_key_secret"] = name or None
        if key:
            over["gcs_key_secret_key"] = key
    if args.job_ttl_seconds is not None:
        over["job_ttl_seconds"] = _optional_int(args.job_ttl_seconds, "--job-ttl-seconds")
    if args.liveness_endpoint is not None:
        over["liveness_endpoint"] = args.liveness_endpoint or None
    return check(replace(base, **over))


def describe(s: Settings) -> dict[str, Any]:
    """For the startup log line: every setting, nothing secret in here."""
    return {f.name: getattr(s, f.name) for f in fields(s)}
