"""Shared fixtures: the real DNS world (NSD + rbldnsd + dnsmasq on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.dnsworld import DNSWorld, daemons_available, running_world

# Property tests draw the same examples every run: a CI result must not depend on
# the draw (the random exploration is tools/fuzz.py's job). Time is bounded by the
# tests themselves (CPU time), never by hypothesis' per-example wall-clock deadline.
settings.register_profile(
    "mailcheck", derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("mailcheck")


@pytest.fixture(scope="session")
def dns_world() -> Iterator[DNSWorld]:
    if not daemons_available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the real DNS daemons: install nsd, rbldnsd and dnsmasq-base")
        pytest.skip("nsd/rbldnsd/dnsmasq not installed (apt-get install -y nsd rbldnsd dnsmasq-base)")
    with running_world() as world:
        yield world


@pytest.fixture
def mid_window_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rate limits count hits per fixed window aligned to the clock (the hour): a test
    that ran across xx:00:00 saw its count split in two. The store's clock is moved to
    the middle of the hour (time still passes)."""
    from datetime import timedelta

    import bot.storage.settings as settings_mod

    real = settings_mod._utcnow
    shift = timedelta(seconds=real().timestamp() % 3600 - 1800)
    # Rate limits live in bot/storage/settings.py, which holds its own reference.
    monkeypatch.setattr(settings_mod, "_utcnow", lambda: real() - shift)


# -- a hang guard for async tests --------------------------------------------------------
# A hang must cost one failing test with a diagnosis, not the whole CI run: an
# async test that runs longer than this fails with every pending task's stack.
# Not a speed limit (the slowest test takes ~20 s); it only ends real hangs.
ASYNC_TEST_HANG_GUARD_S = float(os.environ.get("MAILCHECK_TEST_HANG_GUARD", "240"))


def _task_stacks() -> str:
    import asyncio
    import io

    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task!r}\n")
        coro = task.get_coro()
        depth = 0
        while coro is not None and depth < 25:  # walk the await chain (get_stack shows one frame)
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                out.write(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            depth += 1
    return out.getvalue()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    import asyncio
    import functools
    import inspect

    func = getattr(item, "obj", None)
    if func is None or not inspect.iscoroutinefunction(func):
        return (yield)

    @functools.wraps(func)
    async def guarded(*args: object, **kwargs: object) -> object:
        task = asyncio.ensure_future(func(*args, **kwargs))
        done, _ = await asyncio.wait({task}, timeout=ASYNC_TEST_HANG_GUARD_S)
        if not done:
            stacks = _task_stacks()
            task.cancel()
            await asyncio.wait({task}, timeout=5)  # let it unwind before the next test
            raise AssertionError(f"test hung for {ASYNC_TEST_HANG_GUARD_S:g} s; pending tasks:\n{stacks}")
        return task.result()

    item.obj = guarded  # type: ignore[attr-defined]
    try:
        return (yield)
    finally:
        item.obj = func  # type: ignore[attr-defined]
