"""Operator configuration: environment variables (the chart's Deployment sets them), overridden
by command-line flags (for humans).

`Settings` is the one spelling of each setting: its field carries the type, the default, the
checks, the environment variable (the alias), the text format it accepts (a before-validator
from settings_values) and its flag (settings_flags builds argparse from the fields).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tflite_operator.controller import settings_values as sv
from tflite_operator.controller.settings_flags import Flag, build_parser, flag_of, parse_flags
from tflite_operator.controller.settings_messages import setting_problem

# The converter target of the Dockerfile (the operator image has no TensorFlow).
DEFAULT_IMAGE = "ghcr.io/tflite-operator/tflite-converter:0.1.0"
DEFAULT_COMMAND = ("tflite-operator", "job")
# The converter loads TensorFlow and holds a SavedModel and its variants in memory.
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "1", "memory": "2Gi"},
    "limits": {"memory": "4Gi"},
}


def _text(parse: Callable[[str], Any]) -> BeforeValidator:
    """Parse text (an environment variable, a flag); a Python value goes to pydantic as is."""
    return BeforeValidator(lambda v: parse(v) if isinstance(v, str) else v)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        # Every text format is parsed by the field's own validator (K=V pairs, comma lists,
        # "none"), not by pydantic-settings' JSON decoding, so one parser serves variable
        # and flag alike.
        enable_decoding=False,
        case_sensitive=True,
        validate_by_name=True,
        extra="forbid",
    )

    converter_image: Annotated[str, Flag("--converter-image", metavar="IMAGE")] = Field(
        DEFAULT_IMAGE, min_length=1, validation_alias="CONVERTER_IMAGE",
        description="converter Jobs' image",
    )  # fmt: skip
    converter_command: Annotated[
        tuple[str, ...], _text(sv.command), Flag("--converter-command", metavar="JSON")
    ] = Field(
        DEFAULT_COMMAND, min_length=1, validation_alias="CONVERTER_COMMAND",
        description="converter Jobs' command, a JSON list (never split on spaces)",
    )  # fmt: skip
    image_pull_policy: Annotated[
        Literal["Always", "IfNotPresent", "Never"], Flag("--image-pull-policy")
    ] = Field(
        "IfNotPresent", validation_alias="CONVERTER_IMAGE_PULL_POLICY",
        description="converter Jobs' imagePullPolicy",
    )  # fmt: skip
    default_resources: Annotated[
        dict[str, dict[str, str]], _text(sv.resources),
        Flag("--converter-resources", metavar="JSON"),
    ] = Field(
        DEFAULT_RESOURCES, validation_alias="CONVERTER_RESOURCES",
        description='converter pods\' {"requests": {...}, "limits": {...}} when '
        "spec.job.resources is unset",
    )  # fmt: skip
    converter_extra_env: Annotated[
        dict[str, str], BeforeValidator(sv.env_pairs),
        Flag("--converter-env", metavar="KEY=VALUE", repeat=True, merge=True),
    ] = Field(
        {}, validation_alias="CONVERTER_EXTRA_ENV",
        description="extra environment of converter pods, e.g. STORAGE_EMULATOR_HOST=host:port "
        "or a proxy; K=V,K=V or a JSON object",
    )  # fmt: skip
    run_as_user: Annotated[int, Flag("--run-as-user", metavar="UID")] = Field(
        65532, ge=0, validation_alias="CONVERTER_RUN_AS_USER",
        description="converter pods' uid; the restricted Pod Security Standard needs a "
        "non-root one, the image's user is 65532",
    )  # fmt: skip
    converter_node_selector: Annotated[
        dict[str, str], _text(sv.json_object),
        Flag("--converter-node-selector", metavar="JSON"),
    ] = Field(
        {}, validation_alias="CONVERTER_NODE_SELECTOR",
        description="converter pods' nodeSelector (a JSON object) when spec.job.nodeSelector "
        "is unset",
    )  # fmt: skip
    converter_tolerations: Annotated[
        tuple[dict[str, Any], ...], _text(sv.json_objects),
        Flag("--converter-tolerations", metavar="JSON"),
    ] = Field(
        (), validation_alias="CONVERTER_TOLERATIONS",
        description="converter pods' tolerations (a JSON list) when spec.job.tolerations is "
        "unset",
    )  # fmt: skip
    converter_service_account: Annotated[
        str | None, _text(sv.empty_is_none), Flag("--converter-service-account", metavar="NAME")
    ] = Field(
        None, validation_alias="CONVERTER_SERVICE_ACCOUNT",
        description="converter pods' ServiceAccount when spec.job.serviceAccountName is unset",
    )  # fmt: skip
    gcs_key_secret: Annotated[
        str | None, _text(sv.empty_is_none), Flag("--gcs-key-secret", metavar="NAME[:KEY]")
    ] = Field(
        None, validation_alias="CONVERTER_GCS_KEY_SECRET",
        description="a Secret with a GCS service-account key, for clusters without Workload "
        "Identity: mounted read-only, GOOGLE_APPLICATION_CREDENTIALS names it; NAME:KEY "
        "also sets the key",
    )  # fmt: skip
    gcs_key_secret_key: str = Field(
        "key.json", min_length=1, validation_alias="CONVERTER_GCS_KEY_SECRET_KEY",
        description="the key of that Secret",
    )  # fmt: skip
    namespaces: Annotated[
        tuple[str, ...], BeforeValidator(sv.comma_list),
        Flag("--namespace", short="-n", metavar="NS", repeat=True),
    ] = Field(
        (), validation_alias="WATCH_NAMESPACES",
        description="namespaces to watch (a comma list in the variable); none: the whole "
        "cluster",
    )  # fmt: skip
    max_concurrent_jobs: Annotated[int, Flag("--max-concurrent-jobs")] = Field(
        4, ge=0, validation_alias="MAX_CONCURRENT_JOBS",
        description="running converter Jobs at most; more wait as Queued; 0: no limit",
    )  # fmt: skip
    queue_retry_seconds: Annotated[float, Flag("--queue-retry-seconds")] = Field(
        10.0, gt=0, allow_inf_nan=False, validation_alias="QUEUE_RETRY_SECONDS",
        description="how often a queued conversion asks again for a slot",
    )  # fmt: skip
    resync_seconds: Annotated[float, Flag("--resync-seconds")] = Field(
        60.0, gt=0, allow_inf_nan=False, validation_alias="RESYNC_SECONDS",
        description="how often a running conversion re-reads its Job: a safety net for "
        "missed watch events and for a Job deleted by hand",
    )  # fmt: skip
    job_ttl_seconds: Annotated[
        int | None, _text(sv.none_word), Flag("--job-ttl-seconds", metavar="SECONDS|none")
    ] = Field(
        86400, ge=0, validation_alias="JOB_TTL_SECONDS",
        description="delete finished Jobs (and their pods' logs) after this long; none keeps "
        "them",
    )  # fmt: skip
    metrics_port: Annotated[int, Flag("--metrics-port", metavar="PORT")] = Field(
        9090, ge=0, le=65535, validation_alias="METRICS_PORT",
        description="Prometheus metrics port; 0: off",
    )  # fmt: skip
    liveness_endpoint: Annotated[
        str | None, _text(sv.empty_is_none), Flag("--liveness", metavar="URL")
    ] = Field(
        "http://0.0.0.0:8080/healthz", validation_alias="LIVENESS_ENDPOINT",
        description="Kopf liveness endpoint; '' turns it off",
    )  # fmt: skip
    peering: Annotated[
        str | None, _text(sv.empty_is_none), Flag("--peering", metavar="NAME")
    ] = Field(
        None, validation_alias="PEERING_NAME",
        description="Kopf peering name, for several replicas; unset: standalone (one replica)",
    )  # fmt: skip
    tenant_policy_configmap: Annotated[
        str | None, _text(sv.empty_is_none), Flag("--tenant-policy-configmap", metavar="NAME")
    ] = Field(
        None, validation_alias="TENANT_POLICY_CONFIGMAP",
        description="the ConfigMap in each namespace that lists the buckets and "
        "ServiceAccounts its conversions may use, checked again before each Job; unset: no "
        "tenant policy",
    )  # fmt: skip
    tenant_when_no_policy: Annotated[
        Literal["Allow", "Deny"], Flag("--tenant-when-no-policy")
    ] = Field(
        "Allow", validation_alias="TENANT_WHEN_NO_POLICY",
        description="a namespace without that ConfigMap: Allow (no restriction) or Deny",
    )  # fmt: skip
    verbose: Annotated[bool, _text(sv.empty_is_false), Flag("--verbose")] = Field(
        False, validation_alias="OPERATOR_VERBOSE", description="verbose logs"
    )
    debug: Annotated[bool, _text(sv.empty_is_false), Flag("--debug")] = Field(
        False, validation_alias="OPERATOR_DEBUG", description="debug logs"
    )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @model_validator(mode="before")
    @classmethod
    def _key_after_secret_name(cls, data: Any) -> Any:
        """`--gcs-key-secret NAME:KEY` (or the variable so spelled) names the Secret's key too.
        Secret names are DNS names: never a colon of their own."""
        secret = data.get("gcs_key_secret") if isinstance(data, dict) else None
        if isinstance(secret, str) and ":" in secret:
            name, _, key = secret.partition(":")
            data = {**data, "gcs_key_secret": name}
            if key:
                data["gcs_key_secret_key"] = key
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `Settings(...)` is a plain value (tests build them; nothing leaks in from the
        # process's environment, no .env file, no secrets dir): from_env() reads the
        # environment, from the mapping it is given.
        return (init_settings,)


ENV_VARS: dict[str, str] = {n: str(f.validation_alias) for n, f in Settings.model_fields.items()}
FLAGS: dict[str, str] = {
    n: flag.name for n, f in Settings.model_fields.items() if (flag := flag_of(f)) is not None
}
_FIELD_OF_VAR = {var: name for name, var in ENV_VARS.items()}


class SettingsError(ValueError):
    pass


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping: os.environ, or a test's, or
    the env of the chart's rendered Deployment (tests/shipping)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(Settings)
        self.env_vars = dict(environ)


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    found = _Environ(os.environ if environ is None else environ)()
    values = {_FIELD_OF_VAR.get(key, key): value for key, value in found.items()}
    return _validated(values, origin=ENV_VARS)


def from_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Environment first, then the flags given on the command line."""
    base = from_env(environ)
    parser = build_parser(
        Settings,
        prog="tflite-operator operator",
        description="Run the TFLiteConversion operator. Every flag has an environment variable "
        "(shown in brackets) for the Deployment; flags win.",
    )
    given = parse_flags(parser, argv)
    for name, value in given.items():
        flag = flag_of(Settings.model_fields[name])
        if flag is not None and flag.merge:
            given[name] = [getattr(base, name), *value]
    values = {name: getattr(base, name) for name in Settings.model_fields} | given
    return _validated(values, origin={name: FLAGS[name] for name in given})


def describe(s: Settings) -> dict[str, Any]:
    """For the startup log line: every setting, nothing secret in here."""
    return {name: getattr(s, name) for name in Settings.model_fields}


def _validated(values: dict[str, Any], origin: Mapping[str, str]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as err:
        problems = (setting_problem(e, origin, Settings.model_fields) for e in err.errors())
        raise SettingsError("; ".join(problems)) from None
