"""Operator configuration from the environment and flags."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from tflite_operator.controller.main import main
from tflite_operator.controller.settings import (
    ENV_VARS,
    FLAGS,
    Settings,
    SettingsError,
    describe,
    from_args,
    from_env,
)


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


# Every old flag, spelled as tests/cluster_helpers.py, the docs and users' scripts spell it: the
# flags are derived from the fields now, and a renamed field must not rename its flag.
OLD_FLAGS = {
    "--converter-image", "--converter-command", "--image-pull-policy", "--converter-resources",
    "--converter-env", "--run-as-user", "--converter-node-selector", "--converter-tolerations",
    "--converter-service-account", "--gcs-key-secret", "--namespace", "--max-concurrent-jobs",
    "--queue-retry-seconds", "--resync-seconds", "--job-ttl-seconds", "--metrics-port",
    "--liveness", "--peering", "--verbose", "--debug",
}  # fmt: skip
NEW_FLAGS = {"--tenant-policy-configmap", "--tenant-when-no-policy"}


def test_flags_and_variables_keep_their_names():
    assert set(FLAGS.values()) == OLD_FLAGS | NEW_FLAGS
    assert len(set(ENV_VARS.values())) == len(ENV_VARS) == len(Settings.model_fields)
    # The one setting without a flag of its own: --gcs-key-secret NAME:KEY sets it.
    assert set(ENV_VARS) - set(FLAGS) == {"gcs_key_secret_key"}


def test_help_names_every_flag_and_variable(capsys):
    with pytest.raises(SystemExit) as exit_:
        from_args(["--help"], {})
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for flag in OLD_FLAGS:
        assert flag in out
    for var in ENV_VARS.values():
        assert f"[{var}]" in out or f"{var} (" in out, var
    assert "-n NS, --namespace NS" in out and "default 86400" in out


def test_every_old_flag_still_parses():
    s = from_args(
        ["--converter-image", "r/c:1", "--converter-command", '["a", "b"]',
         "--image-pull-policy", "Never", "--converter-resources", '{"limits": {"cpu": 2}}',
         "--converter-env", "A=1,B=2", "--converter-env", '{"C": "3"}', "--run-as-user", "1000",
         "--converter-node-selector", '{"pool": "x"}', "--converter-service-account", "sa",
         "--gcs-key-secret", "k", "-n", "a,b", "--namespace", "c",
         "--queue-retry-seconds", "0.5", "--resync-seconds", "2", "--job-ttl-seconds", "off",
         "--metrics-port", "0", "--liveness", "", "--peering", "p", "--debug"],
        {},
    )  # fmt: skip
    assert s.converter_image == "r/c:1" and s.converter_command == ("a", "b")
    assert s.image_pull_policy == "Never"
    # A chart value `cpu: 2` arrives as a JSON number; Kubernetes quantities are strings.
    assert s.default_resources == {"limits": {"cpu": "2"}}
    assert s.converter_extra_env == {"A": "1", "B": "2", "C": "3"}
    assert s.run_as_user == 1000 and s.converter_node_selector == {"pool": "x"}
    assert s.converter_service_account == "sa"
    assert (s.gcs_key_secret, s.gcs_key_secret_key) == ("k", "key.json")
    assert s.namespaces == ("a", "b", "c")
    assert (s.queue_retry_seconds, s.resync_seconds) == (0.5, 2.0)
    assert s.job_ttl_seconds is None and s.metrics_port == 0 and s.liveness_endpoint is None
    assert s.peering == "p" and s.debug and not s.verbose


# The words the message uses for what a setting is for: its field's name.
ENV_VARS_OF = {var: name.replace("_", " ") for name, var in ENV_VARS.items()}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RESYNC_SECONDS": "0"}, "RESYNC_SECONDS must be more than 0, got '0'"),
        ({"QUEUE_RETRY_SECONDS": "soon"}, "QUEUE_RETRY_SECONDS must be a number"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT must be 65535 or less"),
        ({"JOB_TTL_SECONDS": "-5"}, "JOB_TTL_SECONDS must be 0 or more"),
        ({"JOB_TTL_SECONDS": "a day"}, "JOB_TTL_SECONDS must be an integer"),
        ({"CONVERTER_RUN_AS_USER": "nobody"}, "CONVERTER_RUN_AS_USER must be an integer"),
        ({"CONVERTER_RESOURCES": '{"request": {}}'}, 'CONVERTER_RESOURCES must be .*"requests"'),
        ({"CONVERTER_RESOURCES": "cpu=1"}, "CONVERTER_RESOURCES must be .*not valid JSON"),
        ({"CONVERTER_NODE_SELECTOR": '["pool"]'}, "CONVERTER_NODE_SELECTOR must be a JSON obj"),
        ({"CONVERTER_COMMAND": "[]"}, "CONVERTER_COMMAND must be a non-empty JSON list"),
        # The old parser read anything but 1/true/yes/on as false, a typo included.
        ({"OPERATOR_VERBOSE": "ture"}, "OPERATOR_VERBOSE must be true or false"),
        ({"CONVERTER_GCS_KEY_SECRET_KEY": ""}, "CONVERTER_GCS_KEY_SECRET_KEY must not be empty"),
    ],
)
def test_an_invalid_variable_is_named_with_a_valid_shape(env, message):
    with pytest.raises(SettingsError, match=message) as err:
        from_env(env)
    # ...and says what the setting is for, in words.
    (var,) = env
    assert f"({ENV_VARS_OF[var]}:" in str(err.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-concurrent-jobs", "many"], "--max-concurrent-jobs must be an integer"),
        (["--job-ttl-seconds", "-1"], "--job-ttl-seconds must be 0 or more"),
        (["--converter-env", "A=1", "--converter-env", "B"], "--converter-env must be KEY=VALUE"),
        (["--converter-tolerations", "{}"], "--converter-tolerations must be a JSON list"),
        (["--image-pull-policy", "Sometimes"], "--image-pull-policy must be 'Always'"),
    ],
)
def test_an_invalid_flag_is_named_not_its_variable(argv, message):
    # The variable is valid: the flag's value is the one at fault.
    env = {"MAX_CONCURRENT_JOBS": "2", "CONVERTER_EXTRA_ENV": "Y=2"}
    with pytest.raises(SettingsError, match=message):
        from_args(argv, env)


def test_an_empty_variable_means_unset_where_it_always_did():
    s = from_env(
        {"CONVERTER_EXTRA_ENV": "", "CONVERTER_NODE_SELECTOR": "", "CONVERTER_TOLERATIONS": "",
         "CONVERTER_SERVICE_ACCOUNT": "", "WATCH_NAMESPACES": "", "OPERATOR_VERBOSE": "",
         "PEERING_NAME": ""}
    )  # fmt: skip
    assert s == Settings()


def test_gcs_key_secret_name_and_key():
    # A key after the name wins over the variable's key: it is the more specific spelling.
    env = {"CONVERTER_GCS_KEY_SECRET": "k", "CONVERTER_GCS_KEY_SECRET_KEY": "x.json"}
    s = from_args(["--gcs-key-secret", "gcs:sa.json"], env)
    assert (s.gcs_key_secret, s.gcs_key_secret_key) == ("gcs", "sa.json")
    s = from_args(["--gcs-key-secret", "gcs"], env)
    assert (s.gcs_key_secret, s.gcs_key_secret_key) == ("gcs", "x.json")
    assert from_args(["--gcs-key-secret", ""], env).gcs_key_secret is None
    # The variable takes the same spelling.
    s = from_env({"CONVERTER_GCS_KEY_SECRET": "gcs:sa.json"})
    assert (s.gcs_key_secret, s.gcs_key_secret_key) == ("gcs", "sa.json")


def test_the_process_environment_reaches_from_env_and_not_settings(monkeypatch):
    monkeypatch.setenv("MAX_CONCURRENT_JOBS", "1")
    monkeypatch.setenv("CONVERTER_EXTRA_ENV", "A=1")
    assert from_env().max_concurrent_jobs == 1
    assert from_args(["--converter-env", "B=2"]).converter_extra_env == {"A": "1", "B": "2"}
    # A Settings built in code is a plain value: what the test runner's environment holds
    # must not change it.
    assert Settings().max_concurrent_jobs == 4 and Settings().converter_extra_env == {}


def test_settings_are_immutable_and_describe_lists_them_all():
    s = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        s.max_concurrent_jobs = 9  # type: ignore[misc]
    shown = describe(s)
    assert list(shown) == list(ENV_VARS)
    assert json.loads(json.dumps(shown, default=str))["max_concurrent_jobs"] == 4


def test_main_says_what_is_wrong_and_exits_2(capsys):
    assert main(["--metrics-port", "http"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metrics-port must be an integer, got 'http'")


def test_the_install_guide_lists_every_variable():
    guide = (Path(__file__).parents[2] / "docs" / "install.md").read_text()
    table = guide.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([A-Z][A-Z_]+)`", table))
    assert set(ENV_VARS.values()) <= listed, set(ENV_VARS.values()) - listed
