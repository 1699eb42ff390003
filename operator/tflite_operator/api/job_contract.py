"""The contract between the operator and the converter pod: one spelling for both sides.

The operator (controller/job_builder.py) writes these names into the Job; the converter
(`tflite-operator job`, cli.py) reads them. A name changed on one side only would be a pod
that runs with defaults, so both import them from here.
"""

from __future__ import annotations

from tflite_operator.api import errors

CONTAINER_NAME = "converter"

# The spec, as JSON (never a shell string), and who the run belongs to.
SPEC_ENV = "TFLITE_OPERATOR_SPEC"
NAME_ENV = "TFLITE_OPERATOR_NAME"
# The resource's uid and generation: outputs are tagged with them, so that a retry of the same
# generation recognises its own files and a cleanup deletes only what this resource wrote.
UID_ENV = "TFLITE_OPERATOR_UID"
GENERATION_ENV = "TFLITE_OPERATOR_GENERATION"
TERMINATION_LOG_ENV = "TFLITE_OPERATOR_TERMINATION_LOG"
TERMINATION_LOG = "/dev/termination-log"
# The operator's own variables win over the operator's CONVERTER_EXTRA_ENV.
RESERVED_ENV = (SPEC_ENV, NAME_ENV, UID_ENV, GENERATION_ENV, TERMINATION_LOG_ENV)

# The root file system is read-only: temp files and caches go to this emptyDir.
SCRATCH = "/scratch"
GCS_KEY_DIR = "/var/run/secrets/tflite-operator/gcs"

# An argument, not an environment variable: a converter that does not know it exits with a
# usage error (2) instead of running a conversion.
DELETE_OUTPUTS_ARG = "--delete-outputs"

# Exit codes after which a retry would fail the same way: the Job fails at once.
# Storage (6), internal (1) and SIGTERM (143) may be transient and count against backoffLimit.
PERMANENT_EXIT_CODES: tuple[int, ...] = tuple(
    sorted({cls.exit_code for cls in errors.PERMANENT_ERRORS})
)
