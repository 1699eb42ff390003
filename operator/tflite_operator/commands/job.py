"""`tflite-operator job`: the converter pod's entry point (spec from the environment)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tflite_operator.api.errors import ConversionError, SpecError, TerminatedError
from tflite_operator.api.job_contract import (
    DELETE_OUTPUTS_ARG,
    GENERATION_ENV,
    NAME_ENV,
    SPEC_ENV,
    TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    UID_ENV,
)
from tflite_operator.api.manifest import parse_spec
from tflite_operator.api.report import Summary, summarize
from tflite_operator.api.spec import ConversionSpec
from tflite_operator.commands.common import (
    EXIT_HELP,
    add_log_format_arg,
    add_verbose_arg,
    add_workers_arg,
    run_pipeline,
)

if TYPE_CHECKING:
    from tflite_operator.storage.ownership import Owner


def register(sub: argparse._SubParsersAction) -> None:
    job = sub.add_parser(
        "job",
        help="run inside a converter Job (spec from the environment)",
        description=f"Run the spec in ${SPEC_ENV} (JSON) named ${NAME_ENV}, log JSON lines and "
        f"write a compact summary to ${TERMINATION_LOG_ENV} (default "
        f"{TERMINATION_LOG}) for the operator. Scratch space is $TMPDIR.",
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job.set_defaults(handler=run)
    job.add_argument(
        DELETE_OUTPUTS_ARG,
        action="store_true",
        help="instead of converting, delete the spec's outputs (<variant>.tflite, report.json, "
        f"report.html) that the resource ${UID_ENV} wrote; on gs:// another resource's objects "
        "at the same URI are kept, and missing files count as deleted. The operator runs this "
        "when a resource with spec.output.deleteOnResourceDeletion is deleted.",
    )
    add_log_format_arg(job, default="json")
    add_verbose_arg(job)
    add_workers_arg(job)


def _terminated(signum: int, frame: object) -> None:
    raise TerminatedError("the pod was stopped (SIGTERM: deadline reached or Job deleted)")


def run(args: argparse.Namespace) -> int:
    """In a converter pod: every ending, good or bad, leaves a summary for the operator."""
    log_path = Path(os.environ.get(TERMINATION_LOG_ENV, TERMINATION_LOG))
    # Kubernetes stops a pod with SIGTERM (deadline, deletion): turn it into an exception so
    # publish rolls back what it wrote instead of leaving a .tflite without its report.
    signal.signal(signal.SIGTERM, _terminated)
    name = os.environ.get(NAME_ENV, "conversion")
    summary: Summary
    try:
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            raise SpecError(f"${SPEC_ENV} is empty; the operator passes the spec as JSON there")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise SpecError(f"${SPEC_ENV} is not JSON: {err}") from None
        spec = parse_spec(data)
        owner = _owner_from_env()
        code = 0
        if args.delete_outputs:
            summary = _delete_outputs(spec, owner)
        else:
            outcome = run_pipeline(name, spec, None, args.log_format, owner, args.workers)
            summary = summarize(outcome.report)
            if outcome.error:
                # "Reason: message", as for failures before the report: the operator reads
                # the reason off the front.
                summary.error = f"{outcome.error.reason}: {outcome.error.message}"[:1500]
                code = outcome.error.exit_code
    except ConversionError as err:
        summary = Summary(ok=False, error=f"{err.reason}: {err.message}"[:1500])
        code = err.exit_code
    except Exception as err:  # the operator must still learn why the pod died
        summary = Summary(ok=False, error=f"InternalError: {type(err).__name__}: {err}"[:1500])
        code = 1
        import traceback

        traceback.print_exc()
    summary.exit_code = code
    try:
        log_path.write_text(summary.to_termination_message())
    except OSError as err:
        print(f"warning: cannot write termination message to {log_path}: {err}", file=sys.stderr)
    print(json.dumps({"event": "summary", **summary.to_wire()}), file=sys.stderr)
    return code


def _owner_from_env() -> Owner | None:
    """The resource this Job runs for; None when the operator did not say (older operators)."""
    from tflite_operator.storage.ownership import Owner

    uid = os.environ.get(UID_ENV, "")
    generation = os.environ.get(GENERATION_ENV, "")
    if not uid:
        return None
    try:
        return Owner(uid=uid, generation=int(generation))
    except ValueError:
        raise SpecError(
            f"${GENERATION_ENV} is {generation!r}, not a number; the operator sets it to the "
            "resource's metadata.generation"
        ) from None


def _delete_outputs(spec: ConversionSpec, owner: Owner | None) -> Summary:
    """Delete what this resource wrote at spec.output.uri, and nothing of anyone else's."""
    from tflite_operator.converter.pipeline import output_names
    from tflite_operator.storage import storage_for

    uri = spec.output.uri
    uid = owner.uid if owner else ""
    deleted, kept = storage_for(uri).delete_owned(uri, output_names(spec), uid)
    print(
        json.dumps({"event": "deleted", "uri": uri, "objects": len(deleted), "names": deleted}),
        file=sys.stderr,
    )
    if kept:
        # Another resource's outputs (it shares spec.output.uri) or rewritten since: theirs.
        print(
            json.dumps({"event": "kept", "uri": uri, "names": kept, "reason": "not ours"}),
            file=sys.stderr,
        )
    return Summary(ok=True)
