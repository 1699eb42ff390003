"""The operator at scale (issue 8): N TFLiteConversions applied at once with one file, a limit
of 5 concurrent Jobs, and Jobs that never finish, on the test suite's real control plane
(etcd, kube-apiserver, kube-controller-manager) without a kubelet; then a few Jobs made
Complete one at a time. A fresh control plane per N. Progress goes to stderr, the table to
stdout; --write replaces the section "Operator at scale" of a markdown file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from common import replace_section
from scale_cluster import PLURAL, KubeCluster, OperatorProcess, complete_job, install_operator
from scale_cluster import manifests as make_manifests
from scale_probes import (
    LivenessPoller,
    Watcher,
    cpu_seconds,
    flow_totals,
    rates,
    request_totals,
    status_kib,
)
from scale_report import LIMIT, TITLE, Result, commit, section_text, table

OPERATOR_FLOW = "service-accounts"  # APF flow schema of non-kube-system ServiceAccounts


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait(check, timeout: float, what: str, progress=lambda: "", every: float = 10.0) -> bool:
    """Polls `check()` (a cheap, local check) until true or `timeout`; says how it goes."""
    t0 = last = time.monotonic()
    while not check():
        now = time.monotonic()
        if now - t0 > timeout:
            say(f"gave up after {timeout:.0f} s: {what} {progress()}")
            return False
        if now - last >= every:
            say(f"  {now - t0:.0f} s: {what} {progress()}")
            last = now
        time.sleep(0.1)
    return True


def proc_file(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def run_one(n: int, args: argparse.Namespace, logs: Path) -> Result:
    res = Result(n, load=(os.getloadavg()[0], 0.0))
    say(f"N={n}: starting a control plane without a kubelet")
    cluster = KubeCluster.start()
    op = watcher = poller = None
    try:
        kubeconfig = install_operator(cluster)
        ns = cluster.create_namespace(prefix=f"scale{n}-")
        op = OperatorProcess(
            kubeconfig, [ns], "http://127.0.0.1:9", logs / f"operator-{n}.log", LIMIT,
            # The product's default retry interval, not the tests' 1 s; no --verbose, as in
            # production (verbose logging of 1000 resources is a load of its own).
            extra=["--queue-retry-seconds", str(args.queue_retry_seconds)],
        )  # fmt: skip
        op.args = [a for a in op.args if a != "--verbose"]
        op.start()
        assert op.proc is not None
        pid = op.proc.pid
        poller = LivenessPoller(f"http://127.0.0.1:{op.liveness_port}/healthz").start()
        conv_path = f"/apis/tflite.dev/v1alpha1/namespaces/{ns}/{PLURAL}"
        watcher = Watcher(cluster.rest, ns, conv_path).start()

        file = logs / f"conversions-{n}.yaml"
        file.write_text(make_manifests(n))
        say(f"N={n}: kubectl apply -f {file}")
        t0 = time.monotonic()
        cluster.kubectl("apply", "-n", ns, "-f", str(file), timeout=args.timeout)
        applied = time.monotonic()
        res.apply_s = applied - t0
        say(f"N={n}: applied in {res.apply_s:.1f} s; waiting for every status.phase")
        wait(
            lambda: len(watcher.seen.first_status) >= n,
            args.timeout,
            "waiting for statuses:",
            lambda: f"{len(watcher.seen.first_status)}/{n} have one",
        )
        seen = watcher.snapshot()
        res.first_status = [max(0.0, t - applied) for t in seen.first_status.values()]
        res.missing = n - len(seen.first_status)

        say(f"N={n}: idle window of {args.idle_seconds:.0f} s")
        m0, c0 = cluster.rest.get_text("/metrics"), cpu_seconds(proc_file(pid, "stat"))
        i0 = time.monotonic()
        time.sleep(args.idle_seconds)
        m1, c1 = cluster.rest.get_text("/metrics"), cpu_seconds(proc_file(pid, "stat"))
        res.idle_s = time.monotonic() - i0
        res.cpu_s_per_min = (c1 - c0) / res.idle_s * 60
        status = proc_file(pid, "status")
        res.rss_mib = status_kib(status, "VmRSS") / 1024
        res.peak_mib = status_kib(status, "VmHWM") / 1024
        by_key = rates(request_totals(m0), request_totals(m1), res.idle_s)
        res.api_rps = {f"{v} {r}": x for (v, r), x in sorted(by_key.items(), key=lambda kv: -kv[1])}
        flows = rates(flow_totals(m0), flow_totals(m1), res.idle_s)
        res.operator_rps = flows.get(OPERATOR_FLOW, 0.0) if flow_totals(m1) else None

        for k in range(args.finish):
            finish_one(cluster, watcher, ns, n, k, args, res)
    finally:
        with _shielded():
            for thing in (poller, watcher):
                if thing is not None:
                    thing.stop()
            if op is not None:
                op.stop()
            cluster.stop()
    if poller is not None:
        res.live_max = max(poller.latencies, default=0.0)
        res.live_fail = len(poller.failures)
        res.live_fail_s = sum(s for s, _ in poller.failures)
    res.errors += watcher.errors if watcher is not None else []
    res.load = (res.load[0], os.getloadavg()[0])
    return res


def finish_one(
    cluster: KubeCluster, watcher: Watcher, ns: str, n: int, k: int, args, res: Result
) -> None:
    """Makes the oldest active Job Complete; times its conversion's Ready and the next Job."""
    seen = watcher.snapshot()
    active = [j for j in sorted(seen.job_added, key=seen.job_added.get)  # type: ignore[arg-type]
              if seen.job_owner.get(j) not in seen.terminal and j not in res.completed]  # fmt: skip
    if not active:
        res.errors.append(f"completion {k + 1}: no active Job to complete")
        return
    job, owner, jobs_before = active[0], seen.job_owner.get(active[0], ""), len(seen.job_added)
    say(f"N={n}: completion {k + 1}/{args.finish}: Job {job} of {owner}")
    complete_job(cluster.rest, ns, job)
    res.completed.append(job)
    t0 = time.monotonic()
    queued_left = n > LIMIT + k
    wait(
        lambda: (
            owner in watcher.seen.terminal
            and (not queued_left or len(watcher.seen.job_added) > jobs_before)
        ),
        args.finish_timeout,
        f"waiting for {owner} to finish and for the next Job:",
        lambda: (
            f"finished={owner in watcher.seen.terminal}, "
            f"new Jobs={len(watcher.seen.job_added) - jobs_before}"
        ),
    )
    seen = watcher.snapshot()
    if owner in seen.ready:
        res.to_ready.append(seen.ready[owner] - t0)
    if owner in seen.terminal:
        res.to_terminal.append(seen.terminal[owner] - t0)
    new = [t for j, t in seen.job_added.items() if t > t0]
    if new:
        res.to_next_job.append(min(new) - t0)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """A second Ctrl-C must not cut the clean-up short and leave servers running."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000],
                   help="numbers of resources, one control plane each (default 100 1000; "
                   "add 3000 for the large run)")  # fmt: skip
    p.add_argument("--idle-seconds", type=float, default=60.0, help="idle window (default 60)")
    p.add_argument("--finish", type=int, default=3, help="Jobs to complete one by one (3)")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="bound on the apply and on the wait for every status (default 600 s)",
    )
    p.add_argument(
        "--finish-timeout",
        type=float,
        default=60.0,
        help="bound on each completion's wait (default 60 s)",
    )
    p.add_argument(
        "--queue-retry-seconds",
        type=float,
        default=10.0,
        help="the operator's --queue-retry-seconds (default 10, the product's)",
    )
    p.add_argument("--write", metavar="FILE", help=f"replace the section '{TITLE}' of FILE")
    args = p.parse_args()
    # SIGTERM ends the run like Ctrl-C, so the finally blocks stop the processes.
    signal.signal(signal.SIGTERM, _interrupt)
    logs = Path(tempfile.mkdtemp(prefix="operator-scale-"))
    say(f"operator logs and manifests in {logs}")
    results = [run_one(n, args, logs) for n in args.sizes]
    body = section_text(table(results, args), args)
    print(body)
    raw = {
        "benchmark": "operator_scale",
        "commit": commit(),
        "results": [asdict(r) for r in results],
    }
    print(json.dumps(raw))
    if args.write:
        path = Path(args.write)
        path.write_text(replace_section(path.read_text() if path.exists() else "", TITLE, body))
        say(f"wrote the section '{TITLE}' of {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        say("interrupted: processes stopped")
        sys.exit(130)
