"""The report of operator_scale.py: its raw figures per N, and the markdown table with the
issue's targets beside them."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import markdown_table
from scale_probes import percentile

TITLE = "Operator at scale"
LIMIT = 5


@dataclass
class Result:
    n: int
    apply_s: float = 0.0
    first_status: list[float] = field(default_factory=list)  # s after the apply ended
    missing: int = 0  # resources with no status when the wait timed out
    live_max: float = 0.0
    live_fail: int = 0
    live_fail_s: float = 0.0
    idle_s: float = 0.0
    cpu_s_per_min: float = 0.0
    rss_mib: float = 0.0
    peak_mib: float = 0.0
    api_rps: dict[str, float] = field(default_factory=dict)  # "VERB resource" -> req/s
    operator_rps: float | None = None
    completed: list[str] = field(default_factory=list)  # Jobs made Complete, in order
    to_ready: list[float] = field(default_factory=list)
    to_terminal: list[float] = field(default_factory=list)
    to_next_job: list[float] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start, at end
    errors: list[str] = field(default_factory=list)


def fmt(values: list[float], *qs: float) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q):.1f}" for q in qs)


def table(results: list[Result], args: argparse.Namespace) -> str:
    cols = [f"N = {r.n}" for r in results]
    rows = [
        ("`kubectl apply` of one file (s)", [f"{r.apply_s:.1f}" for r in results], ""),
        (
            "first status after the apply: p50 / p99 / max (s)",
            [fmt(r.first_status, 50, 99, 100) for r in results],
            "p99 ≤ 10",
        ),
        (
            "last first status after the apply began (s; the issue's 67 s)",
            [f"{r.apply_s + max(r.first_status, default=0.0):.1f}" for r in results],
            "",
        ),
        ("resources without a status at the timeout", [str(r.missing) for r in results], "0"),
        ("liveness: slowest answer (s)", [f"{r.live_max:.2f}" for r in results], "< 1"),
        (
            "liveness: no answer within 10 s (polls / s without answer)",
            [f"{r.live_fail} / {r.live_fail_s:.0f}" for r in results],
            "0",
        ),
        (
            "idle operator CPU: s per minute (% of a core)",
            [f"{r.cpu_s_per_min:.1f} ({r.cpu_s_per_min / 0.6:.0f} %)" for r in results],
            "< 3 (5 %)",
        ),
        (
            "operator RSS after idle / peak (MiB)",
            [f"{r.rss_mib:.0f} / {r.peak_mib:.0f}" for r in results],
            "≤ 200",
        ),
        (
            "idle apiserver requests/s, all clients",
            [f"{sum(r.api_rps.values()):.1f}" for r in results],
            "",
        ),
        (
            "idle apiserver requests/s from the operator (APF flow schema)",
            ["-" if r.operator_rps is None else f"{r.operator_rps:.1f}" for r in results],
            "≤ 2, same for every N",
        ),
        (
            "Job Complete → resource Ready: each (s)",
            [", ".join(f"{x:.1f}" for x in r.to_ready) or "-" for r in results],
            "p99 ≤ 2",
        ),
        (
            "Job Complete → next queued resource's Job: each (s)",
            [", ".join(f"{x:.1f}" for x in r.to_next_job) or "-" for r in results],
            "",
        ),
        (
            "1-min load average at start / end",
            [f"{r.load[0]:.1f} / {r.load[1]:.1f}" for r in results],
            "",
        ),
    ]
    main_rows = [[name, *vals, target] for name, vals, target in rows]
    keys = sorted({k for r in results for k, v in r.api_rps.items() if v >= 0.05},
                  key=lambda k: -max(r.api_rps.get(k, 0.0) for r in results))  # fmt: skip
    api_rows = [[f"`{k}`", *(f"{r.api_rps.get(k, 0.0):.2f}" for r in results)] for k in keys]
    errors = [f"- N = {r.n}: {e}" for r in results for e in r.errors]
    return "\n\n".join(
        [
            markdown_table(["", *cols, "target at N = 1000"], main_rows),
            f"Idle apiserver requests per second by verb and resource ({args.idle_seconds:.0f} s "
            "window after every resource had a status; `apiserver_request_total`, all clients, "
            "rates ≥ 0.05/s):",
            markdown_table(["verb resource", *cols], api_rows),
            *(["Errors:\n" + "\n".join(errors)] if errors else []),
        ]
    )


def _run(argv: list[str]) -> str:
    return subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def commit() -> str:
    """The code measured: the repository's commit, marked when the tree has changes."""
    repo = Path(__file__).resolve().parents[1]
    git = ["git", "-C", str(repo)]
    try:
        sha = _run([*git, "rev-parse", "--short", "HEAD"])
        dirty = _run([*git, "status", "--porcelain", "--", "operator"])
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha} with changes in operator/" if dirty else sha


def section_text(table_text: str, args: argparse.Namespace) -> str:
    cmd = " ".join(["python benchmarks/operator_scale.py", "--sizes", *map(str, args.sizes)])
    return (
        f"`{cmd}` ({time.strftime('%Y-%m-%d')}, operator code at {commit()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs: figures are noisy, see the load average)"
        f"\n\n{table_text}\n\n"
        "How: a fresh control plane per N (tests/controlplane) without a node, so "
        "no pod is ever bound and every Job stays active; the operator as a subprocess with the "
        f"tests' RBAC, `--max-concurrent-jobs {LIMIT}`, "
        f"`--queue-retry-seconds {args.queue_retry_seconds:g}`, one namespace. First status "
        "and Ready are arrival times of watch events (0 = before the apply ended). Idle: "
        f"{args.idle_seconds:.0f} s from the moment every resource had a status, CPU from "
        "/proc/<pid>/stat. A Job is made Complete through its status subresource "
        "(SuccessCriteriaMet, Complete, startTime, completionTime), as the Job controller "
        "records a success; its pod never ran, so Ready=True comes without a converter "
        "summary. Liveness polled every 0.5 s with a 10 s timeout during the whole run.\n"
    )
