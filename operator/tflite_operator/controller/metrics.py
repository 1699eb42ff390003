"""Prometheus metrics of the operator, served on --metrics-port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

CONVERSIONS = Counter(
    "tflite_operator_conversions_total",
    "Conversions that ended, by result (succeeded, failed) and reason.",
    ["result", "reason"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "tflite_operator_conversion_duration_seconds",
    "Converter Job run time, from the Job's start to its end.",
    ["result"],
    # TensorFlow start-up alone takes seconds; large models with int8 calibration, an hour.
    buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tflite_operator_queue_depth",
    "Conversions waiting for a converter Job slot.",
    registry=REGISTRY,
)
ACTIVE_JOBS = Gauge(
    "tflite_operator_active_jobs",
    "Converter Jobs running (counted at the last admission).",
    registry=REGISTRY,
)
JOBS_CREATED = Counter(
    "tflite_operator_jobs_created_total",
    "Converter Jobs created.",
    registry=REGISTRY,
)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=addr, registry=REGISTRY)
