"""Admission to the converter Job slots: at most N Jobs run, the rest wait first come, first
served.

Everything here is in memory and cheap: counting running Jobs reads the operator's index of
its Jobs (no LIST), and a waiting conversion costs nothing until it reaches the head of the
queue. `slot()` makes "count the running Jobs, then create one" atomic within the process;
across processes the operator runs as one replica (standalone, or Kopf peering).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Waiter:
    key: Key
    uid: str
    created: str  # creationTimestamp: the oldest waits least

    @property
    def order(self) -> tuple[str, str, str]:
        return (self.created, *self.key)


def free_slots(limit: int, running: int) -> int | None:
    """None: no limit."""
    return None if limit <= 0 else max(0, limit - running)


class AdmissionQueue:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.RLock()
        self._waiting: dict[Key, Waiter] = {}
        # Jobs created but not yet seen in the index (the watch lags the create by a moment):
        # they hold a slot all the same. Name -> when created.
        self._created: dict[tuple[str, str], float] = {}

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold while counting running Jobs and creating one."""
        with self._lock:
            yield

    def add(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiting[waiter.key] = waiter

    def remove(self, key: Key) -> None:
        with self._lock:
            self._waiting.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._waiting

    def head(self) -> Waiter | None:
        with self._lock:
            return min(self._waiting.values(), key=lambda w: w.order, default=None)

    def depth(self) -> int:
        return len(self._waiting)

    def created(self, namespace: str, job: str) -> None:
        with self._lock:
            self._created[(namespace, job)] = self._clock()

    def running(
        self, active_jobs: Iterable[tuple[str, str]], seen_jobs: Iterable[tuple[str, str]]
    ) -> int:
        """Jobs holding a slot: the index's active ones, plus those created since the index
        last heard of them (forgotten once the index has them, or after a minute)."""
        now = self._clock()
        seen = set(seen_jobs)
        with self._lock:
            self._created = {
                k: t for k, t in self._created.items() if k not in seen and now - t < 60
            }
            return len(set(active_jobs) | set(self._created))
