"""What operator_scale.py measures with: pure parsers of /proc and of Prometheus text, and two
observer threads (a watch of the conversions and Jobs, and a liveness poller).

The observers stamp events with time.monotonic() when they arrive, so that every latency is
measured on this machine's clock, never from the second-resolution timestamps in the objects.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# --- pure functions -----------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value below which q % of the samples lie."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(stat_text: str) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds."""
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(status_text: str, key: str) -> int:
    """A `VmRSS:  1234 kB` style field of /proc/<pid>/status, in KiB."""
    m = re.search(rf"^{key}:\s+(\d+) kB", status_text, re.M)
    if m is None:
        raise ValueError(f"no {key} in /proc status")
    return int(m.group(1))


_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
RequestKey = tuple[str, str]  # (verb, resource[/subresource] or "(non-resource)")


def request_totals(metrics_text: str, metric: str = "apiserver_request_total") -> dict:
    """Sums the apiserver's request counter by (verb, resource/subresource), over codes."""
    totals: dict[RequestKey, float] = {}
    for name, labels, value in _SAMPLE.findall(metrics_text):
        if name != metric:
            continue
        lab = dict(_LABEL.findall(labels))
        resource, sub = lab.get("resource", ""), lab.get("subresource", "")
        # A non-resource request (/metrics, /healthz) has its path in "subresource".
        resource = f"{resource}/{sub}" if resource and sub else resource or sub or "?"
        key = (lab.get("verb", "?"), resource)
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def flow_totals(metrics_text: str) -> dict[str, float]:
    """Requests dispatched per API Priority and Fairness flow schema (who asked, roughly)."""
    totals: dict[str, float] = {}
    for name, labels, value in _SAMPLE.findall(metrics_text):
        if name == "apiserver_flowcontrol_dispatched_requests_total":
            schema = dict(_LABEL.findall(labels)).get("flow_schema", "?")
            totals[schema] = totals.get(schema, 0.0) + float(value)
    return totals


def rates(before: dict, after: dict, seconds: float) -> dict:
    """Per-second increase of each counter between two scrapes (only those that moved)."""
    out = {k: (v - before.get(k, 0.0)) / seconds for k, v in after.items()}
    return {k: r for k, r in out.items() if r > 0}


# --- observers ----------------------------------------------------------------------------


@dataclass
class Seen:
    """Arrival times (monotonic) of what the watch saw, keyed by object name."""

    first_status: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    terminal: dict[str, float] = field(default_factory=dict)
    job_added: dict[str, float] = field(default_factory=dict)
    job_owner: dict[str, str] = field(default_factory=dict)


def _ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


class Watcher:
    """Watches the conversions and the Jobs of one namespace and records arrival times.

    A watch, not a LIST every 0.5 s: a LIST of 1000 conversions twice a second would itself
    load the apiserver, and the idle request rate is one of the figures.
    """

    def __init__(self, rest: Any, namespace: str, conversions_path: str) -> None:
        self.rest, self.seen, self.errors = rest, Seen(), []
        self._paths = {
            "conv": conversions_path,
            "job": f"/apis/batch/v1/namespaces/{namespace}/jobs",
        }
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), daemon=True) for kind in self._paths
        ]

    def start(self) -> Watcher:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.rest.close_watches()
        for t in self._threads:
            t.join(timeout=5)

    def snapshot(self) -> Seen:
        with self._lock:
            s = self.seen
            return Seen(*(dict(d) for d in vars(s).values()))

    def _record(self, kind: str, obj: dict[str, Any], now: float) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        s = self.seen
        with self._lock:
            if kind == "job":
                s.job_added.setdefault(name, now)
                for ref in meta.get("ownerReferences") or []:
                    s.job_owner[name] = ref.get("name", "")
                return
            phase = (obj.get("status") or {}).get("phase")
            if phase:
                s.first_status.setdefault(name, now)
            if _ready(obj):
                s.ready.setdefault(name, now)
            if phase in ("Succeeded", "Failed"):
                s.terminal.setdefault(name, now)

    def _run(self, kind: str) -> None:
        path = self._paths[kind]
        version = ""
        while not self._stop.is_set():
            try:
                if not version:  # (re)list: a watch that ended or expired starts again here
                    listing = self.rest.get(path)
                    now = time.monotonic()
                    for obj in listing.get("items") or []:
                        self._record(kind, obj, now)
                    version = listing["metadata"]["resourceVersion"]
                for event in self.rest.watch(path, version, timeout_seconds=240):
                    if event.get("type") == "ERROR":  # e.g. 410 Gone: relist
                        version = ""
                        break
                    obj = event.get("object") or {}
                    self._record(kind, obj, time.monotonic())
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
            except Exception as exc:  # recorded and shown; the run goes on
                self.errors.append(f"{kind} watch: {exc}")
                version = ""
                self._stop.wait(1)


class LivenessPoller:
    """GETs the operator's liveness endpoint every `interval` s (timeout `timeout` s)."""

    def __init__(self, url: str, interval: float = 0.5, timeout: float = 10.0) -> None:
        self.url, self.interval, self.timeout = url, interval, timeout
        self.latencies: list[float] = []
        self.failures: list[tuple[float, str]] = []  # (seconds spent, why)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LivenessPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                    r.read()
                self.latencies.append(time.monotonic() - t0)
            except OSError as exc:  # timeouts, refused connections and HTTP 5xx alike
                self.failures.append((time.monotonic() - t0, type(exc).__name__))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
