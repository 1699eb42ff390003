"""Admission to the converter Job slots: the in-memory queue (no API calls)."""

from __future__ import annotations

import threading

from tflite_operator.controller.queue import AdmissionQueue, Waiter, free_slots


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_no_limit_means_always_a_free_slot():
    assert free_slots(0, 100) is None
    assert free_slots(3, 1) == 2 and free_slots(3, 5) == 0


def test_head_is_the_oldest_waiting_whatever_the_order_of_arrival():
    q = AdmissionQueue(limit=1)
    q.add(Waiter(("ns", "b"), "u-b", "2024-01-01T00:00:02Z"))
    q.add(Waiter(("ns", "a"), "u-a", "2024-01-01T00:00:01Z"))
    assert q.head().key == ("ns", "a") and q.depth() == 2
    q.remove(("ns", "a"))
    assert q.head().key == ("ns", "b") and ("ns", "a") not in q


def test_an_edited_waiter_keeps_its_place():
    q = AdmissionQueue(limit=1)
    q.add(Waiter(("ns", "a"), "u-a", "1"))
    q.add(Waiter(("ns", "b"), "u-b", "2"))
    q.add(Waiter(("ns", "a"), "u-a", "1"))  # reconcile of a's next generation
    assert q.depth() == 2 and q.head().key == ("ns", "a")


def test_a_created_job_holds_its_slot_until_the_index_has_it():
    clock = Clock()
    q = AdmissionQueue(limit=2, clock=clock)
    q.created("ns", "a-g1")
    assert q.running(active_jobs=[], seen_jobs=[]) == 1
    # The watch delivered it: counted once, from the index.
    assert q.running(active_jobs=[("ns", "a-g1")], seen_jobs=[("ns", "a-g1")]) == 1
    # Finished: the index says inactive, and the slot is free again.
    assert q.running(active_jobs=[], seen_jobs=[("ns", "a-g1")]) == 0
    # A creation the index never reports stops holding a slot after a minute.
    q.created("ns", "b-g1")
    clock.t = 61
    assert q.running(active_jobs=[], seen_jobs=[]) == 0


def test_count_and_create_under_the_slot_never_exceed_the_limit():
    """Many threads at once, each 'creating' a Job when a slot is free."""
    q = AdmissionQueue(limit=3)
    created: list[str] = []
    peak = 0
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        nonlocal peak
        start.wait()
        with q.slot():
            if free_slots(q.limit, q.running([], [])):
                q.created("ns", f"r{i}")
                created.append(f"r{i}")
                peak = max(peak, q.running([], []))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 3 and peak == 3
