"""Where a check spends its time: inside the target, inside the reference, or in the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

TOTALS: dict[str, float] = {"target": 0.0, "reference": 0.0}


@contextmanager
def timed(bucket: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        TOTALS[bucket] += time.perf_counter() - start


def snapshot() -> dict[str, float]:
    return dict(TOTALS)
