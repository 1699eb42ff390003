"""spec -> Job: names, labels, ownership, the spec as data, the restricted pod."""

from __future__ import annotations

import json

import pytest

from tflite_operator.api import errors
from tflite_operator.api.manifest import parse_spec
from tflite_operator.controller import job_builder as jb
from tflite_operator.controller import job_index
from tflite_operator.controller.settings import Settings

SPEC = {
    "source": {"uri": "gs://models/m/saved_model"},
    "output": {"uri": "gs://models-out/m/"},
    "variants": [{"name": "fp32"}, {"name": "int8", "quantization": "int8", "ioType": "int8"}],
}


def body(name: str = "digits", generation: int = 3, spec: dict | None = None) -> dict:
    return {
        "apiVersion": "tflite.dev/v1alpha1",
        "kind": "TFLiteConversion",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": "uid-1234-5678",
            "generation": generation,
        },
        "spec": spec or SPEC,
    }


def build(settings: Settings | None = None, **spec_changes) -> dict:
    spec = parse_spec({**SPEC, **spec_changes})
    return jb.build_job(body(), spec, settings or Settings())


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def env(job: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(job)["env"]}


def test_job_name_is_deterministic_per_generation():
    assert jb.job_name("digits", 3) == "digits-g3"
    assert jb.job_name("digits", 3) == build()["metadata"]["name"]
    assert jb.job_name("digits", 4) != jb.job_name("digits", 3)


@pytest.mark.parametrize("name", ["a" * 60, "x" * 253, "my-model." + "b" * 100])
def test_long_names_are_cut_to_63_and_stay_distinct(name):
    short = jb.job_name(name, 12)
    assert len(short) <= 63 and short.endswith("-g12")
    assert short == jb.job_name(name, 12)
    assert short != jb.job_name(name[:-1] + "z", 12)
    assert len(jb.label_value(name)) <= 63


def test_labels_owner_and_annotation():
    job = build()
    meta = job["metadata"]
    assert meta["namespace"] == "ml"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "tflite-operator",
        "app.kubernetes.io/name": "tflite-converter",
        "app.kubernetes.io/component": "converter",
        "tflite.dev/conversion": "digits",
        "tflite.dev/generation": "3",
    }
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    assert meta["annotations"]["tflite.dev/conversion-name"] == "digits"
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "tflite.dev/v1alpha1",
        "kind": "TFLiteConversion",
        "name": "digits",
        "uid": "uid-1234-5678",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job_index.owner(job) == ("digits", "uid-1234-5678")
    assert job_index.generation_of(job) == 3


def test_the_spec_travels_as_compact_json_and_parses_back_to_the_same_spec():
    job = build()
    values = env(job)
    spec = parse_spec(SPEC)
    assert values["TFLITE_OPERATOR_SPEC"] == json.dumps(
        spec.to_wire(), separators=(",", ":"), sort_keys=True
    )
    assert parse_spec(json.loads(values["TFLITE_OPERATOR_SPEC"])) == spec
    assert values["TFLITE_OPERATOR_NAME"] == "digits"
    assert values["TMPDIR"] == "/scratch"
    assert values["TFLITE_OPERATOR_TERMINATION_LOG"] == container(job)["terminationMessagePath"]
    # The command is fixed: no user text reaches a shell.
    assert container(job)["command"] == ["tflite-operator", "job"]
    assert "args" not in container(job)


def test_a_hostile_string_in_the_spec_stays_data():
    nasty = 'gs://models/m/$(rm -rf /); echo "x"'
    job = jb.build_job(body(), parse_spec({**SPEC, "source": {"uri": nasty}}), Settings())
    assert json.loads(env(job)["TFLITE_OPERATOR_SPEC"])["source"]["uri"] == nasty
    assert all(nasty not in part for part in container(job)["command"])


def test_pod_meets_the_restricted_pod_security_standard():
    pod = build()["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    assert pod["restartPolicy"] == "Never"
    assert "hostNetwork" not in pod and "hostPID" not in pod
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_no_api_token_even_with_a_named_service_account():
    """The converter calls no Kubernetes API; a stolen pod must not hold a token either."""
    pod = build()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    pod = build(job={"serviceAccountName": "gcs-writer"})["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "gcs-writer"


def test_retry_policy_fails_fast_on_permanent_exit_codes():
    spec = build(job={"backoffLimit": 4, "activeDeadlineSeconds": 600})["spec"]
    assert spec["backoffLimit"] == 4
    assert spec["activeDeadlineSeconds"] == 600
    rules = spec["podFailurePolicy"]["rules"]
    fail = next(r for r in rules if r["action"] == "FailJob")
    assert fail["onExitCodes"]["containerName"] == "converter"
    # Every "the input is wrong" code from the error taxonomy, and not storage (6): transient.
    permanent = {
        cls.exit_code
        for cls in (
            errors.SpecError,
            errors.SourceNotFoundError,
            errors.InvalidSourceError,
            errors.ConversionFailedError,
            errors.ValidationFailedError,
            errors.OutputExistsError,
        )
    }
    assert set(fail["onExitCodes"]["values"]) == permanent
    assert errors.StorageError.exit_code not in fail["onExitCodes"]["values"]


def test_no_ttl_at_creation_whatever_the_setting():
    """The operator sets the TTL once the result is in the status (runtime.expire_job): a
    TTL at creation could delete the Job and its pods' summary before the operator read it."""
    assert "ttlSecondsAfterFinished" not in build(Settings(job_ttl_seconds=0))["spec"]


def test_resources_from_spec_else_settings():
    default = container(build())["resources"]
    assert default == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    own = container(build(job={"resources": {"limits": {"memory": "1Gi"}}}))["resources"]
    assert own == {"limits": {"memory": "1Gi"}}


def test_placement_is_passed_through():
    pod = build(
        job={
            "nodeSelector": {"pool": "cpu"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        }
    )["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "cpu"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml"}]


def test_extra_env_reaches_the_pod_but_cannot_replace_the_spec():
    extra = {"STORAGE_EMULATOR_HOST": "http://gcs:4443", "TFLITE_OPERATOR_SPEC": "{}"}
    settings = Settings(converter_extra_env=extra)
    values = env(build(settings))
    assert values["STORAGE_EMULATOR_HOST"] == "http://gcs:4443"
    assert values["TFLITE_OPERATOR_SPEC"] != "{}"
    names = [e["name"] for e in container(build(settings))["env"]]
    assert len(names) == len(set(names))


def test_image_command_and_user_come_from_settings():
    s = Settings(
        converter_image="reg/conv:1",
        converter_command=("python", "-m", "x"),
        run_as_user=1001,
    )
    job = build(s)
    assert container(job)["image"] == "reg/conv:1"
    assert container(job)["command"] == ["python", "-m", "x"]
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 1001


def test_cleanup_job_is_its_own_kind_of_job():
    spec = parse_spec(SPEC)
    job = jb.build_cleanup_job(body(), spec, Settings())
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "cleanup"
    assert job["metadata"]["name"] == "digits-rm-uid-1234"
    assert container(job)["command"] == ["tflite-operator", "job"]
    assert container(job)["args"] == ["--delete-outputs"]
    assert job["metadata"]["name"] != jb.job_name("digits", 3)
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_operator_defaults_for_placement_and_identity_yield_to_the_spec():
    s = Settings(
        converter_node_selector={"pool": "convert"},
        converter_tolerations=({"key": "batch", "operator": "Exists"},),
        converter_service_account="converter",
    )
    pod = build(s)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "convert"}
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    assert pod["serviceAccountName"] == "converter"
    assert pod["automountServiceAccountToken"] is False  # even with a ServiceAccount
    own = build(
        s,
        job={
            "serviceAccountName": "mine",
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
        },
    )["spec"]["template"]["spec"]
    assert own["serviceAccountName"] == "mine" and own["nodeSelector"] == {"pool": "gpu"}
    assert own["tolerations"] == [{"key": "gpu", "operator": "Exists"}]


def test_gcs_key_secret_is_mounted_read_only_and_named_by_the_adc_variable():
    job = build(Settings(gcs_key_secret="gcs-key", gcs_key_secret_key="sa.json"))
    pod = job["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if "secret" in v]
    assert vol["secret"]["secretName"] == "gcs-key"
    assert vol["secret"]["items"] == [{"key": "sa.json", "path": "sa.json"}]
    (mount,) = [m for m in container(job)["volumeMounts"] if m["name"] == vol["name"]]
    assert mount["readOnly"] is True
    assert env(job)["GOOGLE_APPLICATION_CREDENTIALS"] == f"{mount['mountPath']}/sa.json"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env(build())
