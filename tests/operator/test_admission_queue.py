"""Admission to the converter Job slots."""

from __future__ import annotations

import threading

from tflite_operator.controller.queue import AdmissionQueue, decide


def test_no_limit_admits_everything():
    assert decide(("ns", "a"), [], active=100, limit=0).admit


def test_free_slots_go_to_the_oldest_waiting_first():
    order = [("ns", "old"), ("ns", "mid"), ("ns", "new")]
    assert decide(("ns", "old"), order, active=2, limit=3).admit
    late = decide(("ns", "new"), order, active=2, limit=3)
    assert not late.admit and late.position == 3
    assert decide(("ns", "mid"), order, active=1, limit=3).admit
    assert not decide(("ns", "old"), order, active=3, limit=3).admit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_queue_keeps_order_by_creation_and_forgets_stale_waiters():
    clock = Clock()
    q = AdmissionQueue(limit=1, stale_after=30, clock=clock)
    with q.slot():
        assert not q.ask(("ns", "b"), "2024-01-01T00:00:02Z", active=1).admit
        assert not q.ask(("ns", "a"), "2024-01-01T00:00:01Z", active=1).admit
    assert q.depth() == 2
    # A slot frees up: b asks first but a is older, so b must wait.
    with q.slot():
        d = q.ask(("ns", "b"), "2024-01-01T00:00:02Z", active=0)
    assert not d.admit and d.position == 2
    # a stops asking (deleted): after stale_after, b may go.
    clock.t = 31
    with q.slot():
        assert q.ask(("ns", "b"), "2024-01-01T00:00:02Z", active=0).admit
    assert q.depth() == 0


def test_forget_removes_a_waiter():
    q = AdmissionQueue(limit=1, stale_after=30)
    with q.slot():
        q.ask(("ns", "a"), "1", active=1)
        q.ask(("ns", "b"), "2", active=1)
    q.forget(("ns", "a"))
    with q.slot():
        assert q.ask(("ns", "b"), "2", active=0).admit


def test_count_and_create_under_the_slot_never_exceed_the_limit():
    """Many threads asking at once, each 'creating' a Job when admitted."""
    q = AdmissionQueue(limit=3, stale_after=600)
    running: list[str] = []
    peak = 0
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        nonlocal peak
        start.wait()
        with q.slot():
            if q.ask(("ns", f"r{i}"), f"{i:03d}", active=len(running)).admit:
                running.append(f"r{i}")
                peak = max(peak, len(running))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(running) == 3 and peak == 3
    assert q.depth() == 17
