"""Admission to the converter Job slots: at most N Jobs run, the rest wait first-come first-served.

The decision is a pure function of (waiting conversions, active Jobs, limit). `AdmissionQueue`
holds the waiting set and the lock that makes "count the active Jobs, then create one" atomic
within the process: Kopf runs handlers for different resources concurrently, and without the
lock two of them could both see N-1 Jobs and both create one. Across processes the operator
runs as one replica (standalone, or Kopf peering), so one lock is enough.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Decision:
    admit: bool
    position: int  # 1-based place among the waiting, oldest first; 0 when admitted
    active: int
    limit: int


@dataclass
class _Waiter:
    order: tuple[str, str, str]  # (creationTimestamp, namespace, name): oldest first
    last_seen: float


def decide(key: Key, order: list[Key], active: int, limit: int) -> Decision:
    """`order`: the waiting conversions, oldest first, including `key`.

    With `limit` 0 there is no limit. Otherwise `key` may start when it is among the first
    `limit - active` waiting, so that newer resources cannot overtake older ones.
    """
    if limit <= 0:
        return Decision(True, 0, active, limit)
    position = order.index(key) + 1 if key in order else len(order) + 1
    free = limit - active
    if position <= free:
        return Decision(True, 0, active, limit)
    return Decision(False, position, active, limit)


class AdmissionQueue:
    def __init__(
        self, limit: int, stale_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        # A waiter that stopped asking (deleted, or its spec changed) must not block others.
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[Key, _Waiter] = {}

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold while counting active Jobs and creating one."""
        with self._lock:
            yield

    def ask(self, key: Key, created: str, active: int) -> Decision:
        """Call with `slot()` held. Admitted keys leave the queue; the others stay in it."""
        now = self._clock()
        self._waiting = {
            k: w for k, w in self._waiting.items() if now - w.last_seen <= self.stale_after
        }
        waiter = self._waiting.get(key)
        if waiter is None:
            waiter = self._waiting[key] = _Waiter((created, *key), now)
        waiter.last_seen = now
        order = [k for k, _ in sorted(self._waiting.items(), key=lambda kv: kv[1].order)]
        decision = decide(key, order, active, self.limit)
        if decision.admit:
            del self._waiting[key]
        return decision

    def forget(self, key: Key) -> None:
        with self._lock:
            self._waiting.pop(key, None)

    def depth(self) -> int:
        now = self._clock()
        return sum(1 for w in list(self._waiting.values()) if now - w.last_seen <= self.stale_after)
