"""CPU time of one call, for the 'bounded time on hostile input' properties.

Those properties guard against super-linear work (regex backtracking, quadratic
loops), which shows as CPU time. Wall-clock time on a busy 2-core CI machine also
counts other processes and garbage-collection pauses of the whole test session,
which made such bounds flaky; CPU time of this thread, with the collector paused,
measures only the call.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def cpu_timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(fn(), CPU seconds this thread spent in it). The call must not hand work to threads."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.thread_time()
        out = fn()
        return out, time.thread_time() - t0
    finally:
        if was_enabled:
            gc.enable()
