"""`tflite-operator operator [flags]`: run the operator (dispatched from cli.py).

Also `python -m tflite_operator.controller.main [flags]`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

import kopf

from tflite_operator import __version__
from tflite_operator.controller import metrics
from tflite_operator.controller.job_builder import LABEL_MANAGED_BY, MANAGER
from tflite_operator.controller.settings import Settings, SettingsError, describe, from_args

log = logging.getLogger("tflite_operator")


def kopf_settings(s: Settings) -> kopf.OperatorSettings:
    ks = kopf.OperatorSettings()
    # Events are for users: our own transitions, and Kopf's warnings and errors; not every
    # "Handler succeeded" line.
    ks.posting.level = logging.WARNING
    # Handlers are sync and mostly wait on the API server; a few threads are plenty.
    ks.execution.max_workers = 8
    # Re-establish watches now and then: a silently dead connection must not stall the queue.
    ks.watching.server_timeout = 300
    ks.watching.client_timeout = 330
    # Told which namespaces to serve, the operator needs no cluster-wide permission: Kopf
    # would otherwise list namespaces and watch CRDs, and retry for a minute on 403 when
    # a per-namespace Role does not allow it. The price: a CRD installed after the start
    # is seen at the next start.
    ks.scanning.disabled = not s.clusterwide
    # Watch only the operator's own Jobs (server-side): a cluster's other Jobs are no
    # business of ours and would cost an event each.
    ks.watching.label_selectors["batch", "jobs"] = f"{LABEL_MANAGED_BY}={MANAGER}"
    return ks


def run(settings: Settings) -> int:
    # Imported here: registering the handlers is a side effect of the import.
    from tflite_operator.controller import handlers
    from tflite_operator.controller.kube import Kube
    from tflite_operator.controller.queue import AdmissionQueue

    kopf.configure(verbose=settings.verbose, debug=settings.debug)
    shown = describe(settings) | {"converter_extra_env": sorted(settings.converter_extra_env)}
    log.info("tflite-operator %s: %s", __version__, json.dumps(shown, default=str))
    runtime = handlers.Runtime(
        settings=settings,
        kube=Kube.from_environment(),
        queue=AdmissionQueue(settings.max_concurrent_jobs),
    )
    handlers.register_timers(settings)
    metrics.serve(settings.metrics_port)
    kopf.run(
        standalone=settings.peering is None,
        peering_name=settings.peering,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=settings.liveness_endpoint,
        settings=kopf_settings(settings),
        memo=kopf.Memo(runtime=runtime),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = from_args(argv)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
