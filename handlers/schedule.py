"""Digest schedules: parsing and DST-correct next-slot computation.

Pure code (no Slack, no database) shared by the Slack command and the CLI.

Accepted schedules (case-insensitive):
    daily HH:MM         every day
    weekdays HH:MM      Monday to Friday
    weekly DAY HH:MM    once a week; DAY = mon tue wed thu fri sat sun (or the full name)
with a time zone given separately (`tz=Area/City` in Slack, `--tz` in the CLI).

Slots are wall-clock times in that zone. Across DST changes:
- a time that does not exist that day (spring forward: 02:30 in New York)
  fires at the same instant the clock would show it with the old offset,
  i.e. 03:30 local: once, never skipped;
- a time that exists twice (fall back: 01:30) fires once, at the first
  occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_TZ = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
USAGE = "use 'daily HH:MM', 'weekdays HH:MM' or 'weekly mon HH:MM' (24-hour clock)"


class ScheduleError(ValueError):
    """A schedule or time zone that can't be used; str() is one clear line."""


@dataclass(frozen=True)
class Schedule:
    kind: str  # daily | weekdays | weekly
    hour: int
    minute: int
    weekday: int | None = None  # 0 = Monday (weekly only)

    @property
    def text(self) -> str:
        """Canonical form, e.g. 'weekly mon 09:00' (what is stored)."""
        hm = f"{self.hour:02d}:{self.minute:02d}"
        if self.kind == "weekly":
            assert self.weekday is not None
            return f"weekly {DAYS[self.weekday]} {hm}"
        return f"{self.kind} {hm}"

    def runs_on(self, day: date) -> bool:
        if self.kind == "weekdays":
            return day.weekday() < 5
        if self.kind == "weekly":
            return day.weekday() == self.weekday
        return True

    def __str__(self) -> str:
        return self.text


def _parse_time(text: str, whole: str) -> tuple[int, int]:
    m = _TIME.match(text)
    if not m:
        raise ScheduleError(f"bad time {text!r} in schedule {whole!r}: {USAGE}")
    return int(m.group(1)), int(m.group(2))


def _parse_day(text: str, whole: str) -> int:
    low = text.lower()
    if low in DAYS:
        return DAYS.index(low)
    if low in _FULL_DAYS:
        return _FULL_DAYS.index(low)
    raise ScheduleError(f"bad day {text!r} in schedule {whole!r}: use mon, tue, wed, thu, fri, sat or sun")


def parse_schedule(text: str) -> Schedule:
    """'daily 09:00' | 'weekdays 9:30' | 'weekly mon 09:00' -> Schedule (ScheduleError otherwise)."""
    whole = " ".join((text or "").split())
    if len(whole) > 64:
        raise ScheduleError(f"schedule too long: {USAGE}")
    parts = whole.lower().split()
    if not parts:
        raise ScheduleError(f"empty schedule: {USAGE}")
    kind = parts[0]
    if kind in ("daily", "weekdays") and len(parts) == 2:
        h, m = _parse_time(parts[1], whole)
        return Schedule(kind, h, m)
    if kind == "weekly" and len(parts) == 3:
        day = _parse_day(parts[1], whole)
        h, m = _parse_time(parts[2], whole)
        return Schedule("weekly", h, m, day)
    raise ScheduleError(f"schedule must be 'daily HH:MM', 'weekdays HH:MM' or 'weekly mon HH:MM', not {whole!r}")


def expand_shorthand(words: list[str], default_time: str = "09:00") -> str:
    """Slack shorthand -> full schedule text: `daily` / `weekly fri` get `default_time`.

    Only fills in an omitted time; parse_schedule() still validates the result.
    """
    w = [x.lower() for x in words]
    if not w:
        return f"daily {default_time}"
    if (w[0] in ("daily", "weekdays") and len(w) == 1) or (w[0] == "weekly" and len(w) == 2 and ":" not in w[1]):
        w.append(default_time)
    return " ".join(w)


def parse_tz(name: str) -> ZoneInfo:
    """'Asia/Tokyo' -> ZoneInfo; ScheduleError (one line) for anything else."""
    key = (name or "").strip()
    if key.lower().startswith("tz="):
        key = key[3:]
    if key.upper() in ("UTC", "Z", "GMT"):
        key = "UTC"
    if not key or len(key) > 64 or not _TZ.match(key) or ".." in key:
        raise ScheduleError(f"unknown time zone {name!r}: use an Area/City name such as Asia/Tokyo or UTC")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(
            f"unknown time zone {key!r}: use an Area/City name such as Asia/Tokyo or UTC"
        ) from exc


def parse_schedule_spec(text: str, default_tz: str = "UTC") -> tuple[Schedule, ZoneInfo]:
    """Slack-style '<schedule> [tz=Area/City]' (tz token anywhere); empty -> daily 09:00."""
    tokens = (text or "").split()
    tz_tokens = [x for x in tokens if x.lower().startswith("tz=")]
    if len(tz_tokens) > 1:
        raise ScheduleError("give one tz=Area/City")
    rest = " ".join(x for x in tokens if not x.lower().startswith("tz="))
    sched = parse_schedule(rest or "daily 09:00")
    zone = parse_tz(tz_tokens[0][3:] if tz_tokens else (default_tz or "UTC"))
    return sched, zone


def _slot(day: date, sched: Schedule, tz: ZoneInfo) -> datetime:
    """The UTC instant of the schedule's wall time on `day` in `tz` (fold=0; see module doc)."""
    local = datetime.combine(day, time(sched.hour, sched.minute), tzinfo=tz)
    return local.astimezone(UTC)


def next_run(sched: Schedule, tz: ZoneInfo, after: datetime) -> datetime:
    """The first slot strictly after `after` (aware; naive is taken as UTC), as aware UTC."""
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    day = after.astimezone(tz).date() - timedelta(days=1)  # a slot late yesterday may map after `after`
    for _ in range(16):
        if sched.runs_on(day):
            slot = _slot(day, sched, tz)
            if slot > after:
                return slot
        day += timedelta(days=1)
    raise AssertionError("no slot within 16 days")  # pragma: no cover - every schedule runs weekly


def previous_run(sched: Schedule, tz: ZoneInfo, at: datetime) -> datetime:
    """The last slot at or before `at` (the slot a late digest stands for), as aware UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    day = at.astimezone(tz).date() + timedelta(days=1)
    for _ in range(16):
        if sched.runs_on(day):
            slot = _slot(day, sched, tz)
            if slot <= at:
                return slot
        day -= timedelta(days=1)
    raise AssertionError("no slot within 16 days")  # pragma: no cover


def slots_between(sched: Schedule, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every slot in (start, end] (tests and 'what would have run')."""
    out: list[datetime] = []
    cur = start
    while True:
        nxt = next_run(sched, tz, cur)
        if nxt > (end if end.tzinfo else end.replace(tzinfo=UTC)):
            return out
        out.append(nxt)
        cur = nxt


def describe(sched: Schedule, tz: ZoneInfo | str) -> str:
    """Human text: 'every day at 09:00 (Asia/Tokyo)'."""
    key = tz if isinstance(tz, str) else tz.key
    hm = f"{sched.hour:02d}:{sched.minute:02d}"
    if sched.kind == "weekdays":
        when = f"Monday to Friday at {hm}"
    elif sched.kind == "weekly":
        assert sched.weekday is not None
        when = f"every {_FULL_DAYS[sched.weekday].capitalize()} at {hm}"
    else:
        when = f"every day at {hm}"
    return f"{when} ({key})"
