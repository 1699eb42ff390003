"""How the pipeline tells the outside world what it is doing.

The pipeline only calls these methods; the CLI picks a terminal display or log lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    """Silent by default; subclasses display or log."""

    def begin(self, stage: str, detail: str = "", total: int | None = None) -> None:
        """A stage starts; `total` is the number of steps when it has them."""

    def step(self, stage: str, detail: str = "") -> None:
        """One step of a stage finished."""

    def end(self, stage: str, seconds: float, detail: str = "") -> None:
        """A stage finished."""

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the run."""


class StageClock:
    """Times the pipeline's stages, reporting each to a Progress."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, detail: str = "", total: int | None = None) -> Iterator[None]:
        self.progress.begin(name, detail, total)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + elapsed, 3)
            self.progress.end(name, elapsed)
