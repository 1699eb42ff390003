"""Operator configuration from the environment and flags."""

from __future__ import annotations

import pytest

from tflite_operator.controller.settings import Settings, SettingsError, from_args, from_env


def test_defaults():
    s = from_env({})
    assert s == Settings()
    assert s.clusterwide and s.max_concurrent_jobs == 4


def test_environment():
    s = from_env(
        {
            "CONVERTER_IMAGE": "reg/conv:2",
            "CONVERTER_COMMAND": '["tflite-operator", "job"]',
            "CONVERTER_EXTRA_ENV": "STORAGE_EMULATOR_HOST=http://127.0.0.1:4443,A=b=c",
            "CONVERTER_RESOURCES": '{"requests": {"cpu": "500m"}}',
            "WATCH_NAMESPACES": "ml, vision",
            "MAX_CONCURRENT_JOBS": "3",
            "JOB_TTL_SECONDS": "none",
            "METRICS_PORT": "0",
            "LIVENESS_ENDPOINT": "",
        }
    )
    assert s.converter_image == "reg/conv:2"
    assert s.converter_extra_env == {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443", "A": "b=c"}
    assert s.default_resources == {"requests": {"cpu": "500m"}}
    assert s.namespaces == ("ml", "vision") and not s.clusterwide
    assert s.max_concurrent_jobs == 3
    assert s.job_ttl_seconds is None and s.metrics_port == 0 and s.liveness_endpoint is None


def test_extra_env_as_json():
    s = from_env({"CONVERTER_EXTRA_ENV": '{"HTTPS_PROXY": "http://p:3128"}'})
    assert s.converter_extra_env == {"HTTPS_PROXY": "http://p:3128"}


def test_flags_win_over_the_environment():
    s = from_args(
        ["--max-concurrent-jobs", "7", "-n", "a", "-n", "b", "--converter-env", "X=1"],
        {"MAX_CONCURRENT_JOBS": "2", "WATCH_NAMESPACES": "c", "CONVERTER_EXTRA_ENV": "Y=2"},
    )
    assert s.max_concurrent_jobs == 7
    assert s.namespaces == ("a", "b")
    assert s.converter_extra_env == {"Y": "2", "X": "1"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAX_CONCURRENT_JOBS": "many"}, "MAX_CONCURRENT_JOBS must be an integer"),
        ({"MAX_CONCURRENT_JOBS": "-1"}, "max concurrent jobs"),
        ({"CONVERTER_COMMAND": "tflite-operator job"}, "JSON list"),
        ({"CONVERTER_EXTRA_ENV": "NOVALUE"}, "not KEY=VALUE"),
        ({"CONVERTER_IMAGE_PULL_POLICY": "Sometimes"}, "pull policy"),
    ],
)
def test_bad_values_say_what_is_wrong(env, message):
    with pytest.raises(SettingsError, match=message):
        from_env(env)


def test_converter_placement_identity_and_key_secret():
    s = from_args(
        ["--converter-tolerations", '[{"key": "batch", "operator": "Exists"}]',
         "--gcs-key-secret", "gcs:sa.json"],
        {
            "CONVERTER_NODE_SELECTOR": '{"pool": "convert"}',
            "CONVERTER_SERVICE_ACCOUNT": "converter",
        },
    )  # fmt: skip
    assert s.converter_node_selector == {"pool": "convert"}
    assert s.converter_tolerations == ({"key": "batch", "operator": "Exists"},)
    assert s.converter_service_account == "converter"
    assert (s.gcs_key_secret, s.gcs_key_secret_key) == ("gcs", "sa.json")
    env = {"CONVERTER_GCS_KEY_SECRET": "k", "CONVERTER_GCS_KEY_SECRET_KEY": "x.json"}
    assert from_env(env).gcs_key_secret_key == "x.json"
    with pytest.raises(SettingsError, match="JSON list of objects"):
        from_env({"CONVERTER_TOLERATIONS": '{"key": "x"}'})
