"""Regex review (issue 8): no pattern applied to pasted text backtracks badly.

Collects every module-level compiled pattern (also inside module-level lists,
tuples and dicts) of the modules that read pasted or typed text — the bounce
parser, the message diagnosis, Slack text and the command router, the input
validators, schedules, the SPF parser — and searches adversarial input with
each: 100 KB lines, long runs of one character, runs of pairs of the pattern's
own characters (nested near-matches). Every search must finish in < 0.5 s;
an alarm interrupts a runaway search (CPython's regex engine checks signals),
so a catastrophic pattern fails the test instead of hanging it.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest

import handlers.bounce
import handlers.message
import handlers.spf
from tests.support.timing import cpu_timed

LIMIT = 0.5  # seconds per search
MODULES = [
    *(m.name for pkg in (handlers.bounce, handlers.message, handlers.spf)
      for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")),
    "handlers.inputs", "handlers.schedule", "handlers.charsets", "handlers.tags", "handlers.bounce_followup",
    "bot.slack.text", "bot.slack.router", "bot.slack.runtime", "bot.redact",
]


def _walk(obj: Any, where: str, depth: int = 0) -> Iterator[tuple[str, re.Pattern[Any]]]:
    if isinstance(obj, re.Pattern):
        yield where, obj
    elif depth < 3 and isinstance(obj, (list, tuple, set, frozenset)):
        for i, x in enumerate(obj):
            yield from _walk(x, f"{where}[{i}]", depth + 1)
    elif depth < 3 and isinstance(obj, dict):
        for i, (k, v) in enumerate(obj.items()):
            yield from _walk(k, f"{where}<key {i}>", depth + 1)
            yield from _walk(v, f"{where}[{k!r}]" if isinstance(k, str) else f"{where}[{i}]", depth + 1)


def collect_patterns() -> dict[str, re.Pattern[Any]]:
    found: dict[str, re.Pattern[Any]] = {}
    seen: set[tuple[Any, int]] = set()
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr, value in vars(mod).items():
            for where, pat in _walk(value, f"{name}.{attr}"):
                key = (pat.pattern, pat.flags)
                if key not in seen:  # re-exported / shared patterns: test once
                    seen.add(key)
                    found[where] = pat
    return found


PATTERNS = collect_patterns()

_GENERIC = [
    "a" * 100_000, " " * 100_000, "\t" * 100_000, "0" * 100_000, "\n" * 100_000, "a\n" * 50_000, "a " * 50_000,
    "1." * 50_000, "a@" * 50_000, "@" * 100_000, "a-" * 50_000, "=?" * 50_000, ". " * 50_000, "x.y" * 33_000,
    "<a" * 50_000, "550 " * 25_000, "5.7.1 " * 16_000, "a=b; " * 20_000, "\u3000" * 50_000, "日本" * 50_000,
]


def _inputs(pat: re.Pattern[Any]) -> list[str]:
    src = pat.pattern if isinstance(pat.pattern, str) else pat.pattern.decode("latin-1")
    chars = sorted({c for c in src if c.isprintable() and c not in "\\()[]{}?*+|^$"})[:24]
    out = list(_GENERIC)
    out += [c * 20_000 + "\x00" for c in chars]
    out += [(a + b) * 3_000 + "\x00" for a in chars[:8] for b in chars[:8] if a != b]
    return out


class _Runaway(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Runaway


@pytest.mark.parametrize("where", sorted(PATTERNS))
def test_pattern_is_linear_enough(where: str) -> None:
    pat = PATTERNS[where]
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for text in _inputs(pat):
            data: str | bytes = text if isinstance(pat.pattern, str) else text.encode("latin-1", "replace")
            signal.setitimer(signal.ITIMER_REAL, LIMIT * 4)  # a runaway is cut off, then reported
            try:
                _, took = cpu_timed(lambda: pat.search(data))  # noqa: B023 - called at once
            except _Runaway:
                took = LIMIT * 4
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert took < LIMIT, f"{where} /{pat.pattern!r}/ took {took:.2f}s on {text[:12]!r}... ({len(text)} chars)"
    finally:
        signal.signal(signal.SIGALRM, old)


def test_the_review_covers_the_text_parsers() -> None:
    modules = {w.rsplit(".", 1)[0] for w in PATTERNS}
    for expected in ("handlers.bounce.smtp", "handlers.bounce.scan", "bot.slack.text", "bot.slack.router",
                     "handlers.inputs", "handlers.spf.parser"):
        assert any(m.startswith(expected) for m in modules), expected
    assert len(PATTERNS) > 40
