"""Schedules: parsing, one clear error line, DST-correct slots (pure code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers.schedule import (
    ScheduleError,
    describe,
    next_run,
    parse_schedule,
    parse_schedule_spec,
    parse_tz,
    slots_between,
)

TOKYO = parse_tz("Asia/Tokyo")
NY = parse_tz("America/New_York")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("daily 09:00", "daily 09:00"),
        ("Daily 9:05", "daily 09:05"),
        ("weekdays 18:30", "weekdays 18:30"),
        ("weekly mon 09:00", "weekly mon 09:00"),
        ("weekly Friday 7:00", "weekly fri 07:00"),
        ("  weekly   sun   23:59 ", "weekly sun 23:59"),
    ],
)
def test_parse_schedule(text: str, canonical: str) -> None:
    assert parse_schedule(text).text == canonical


@pytest.mark.parametrize(
    "text", ["", "hourly", "daily", "daily 24:00", "daily 9", "daily 09:60", "weekly 09:00", "weekly xyz 09:00",
             "weekdays 09:00 extra", "daily 09:00:00", "x" * 100]
)
def test_bad_schedule_is_one_line(text: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 200
    assert "daily HH:MM" in msg or "day" in msg or "too long" in msg


@pytest.mark.parametrize("name", ["Mars/Base", "../../etc/passwd", "", "Asia/Tokyo; rm", "a" * 80])
def test_bad_tz(name: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_tz(name)
    assert "\n" not in str(info.value)


def test_tz_forms() -> None:
    assert parse_tz("utc").key == "UTC"
    assert parse_tz("tz=Asia/Tokyo").key == "Asia/Tokyo"
    sched, zone = parse_schedule_spec("weekly tue 10:00 tz=Europe/Paris", "UTC")
    assert sched.text == "weekly tue 10:00" and zone.key == "Europe/Paris"
    sched, zone = parse_schedule_spec("", "Asia/Tokyo")
    assert sched.text == "daily 09:00" and zone.key == "Asia/Tokyo"
    with pytest.raises(ScheduleError):
        parse_schedule_spec("daily 09:00 tz=UTC tz=Asia/Tokyo")


def test_tokyo_daily_is_midnight_utc() -> None:
    sched = parse_schedule("daily 09:00")
    # 2026-01-01 10:00 JST = 01:00 UTC -> next is 2026-01-02 09:00 JST = 00:00 UTC
    assert next_run(sched, TOKYO, datetime(2026, 1, 1, 1, 0, tzinfo=UTC)) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    # just before the slot -> today's slot; exactly at the slot -> tomorrow's (strictly after)
    assert next_run(sched, TOKYO, datetime(2026, 1, 1, 23, 59, tzinfo=UTC)) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert next_run(sched, TOKYO, datetime(2026, 1, 2, 0, 0, tzinfo=UTC)) == datetime(2026, 1, 3, 0, 0, tzinfo=UTC)


def test_new_york_across_spring_forward() -> None:
    sched = parse_schedule("daily 09:00")
    slots = slots_between(sched, NY, datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 10, 23, tzinfo=UTC))
    # EST (UTC-5) until Sunday 2026-03-08 02:00, then EDT (UTC-4): 09:00 local stays 09:00 local.
    assert [s.hour for s in slots] == [14, 14, 13, 13, 13]
    assert [s.astimezone(NY).hour for s in slots] == [9] * 5


def test_new_york_across_fall_back() -> None:
    sched = parse_schedule("daily 09:00")
    slots = slots_between(sched, NY, datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 3, 23, tzinfo=UTC))
    # EDT until Sunday 2026-11-01 02:00, then EST
    assert [s.hour for s in slots] == [13, 13, 14, 14, 14]


def test_nonexistent_and_ambiguous_local_times_fire_once() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: fires once (at 03:30 EDT = 07:30 UTC).
    spring = parse_schedule("daily 02:30")
    slots = slots_between(spring, NY, datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert slots == [datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC)]
    # 01:30 exists twice on 2026-11-01: fires once, at the first (EDT) one.
    fall = parse_schedule("daily 01:30")
    slots = slots_between(fall, NY, datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC))
    assert slots == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]


def test_weekdays_and_weekly() -> None:
    wd = parse_schedule("weekdays 08:00")
    start = datetime(2026, 1, 2, 12, tzinfo=UTC)  # Friday
    slots = slots_between(wd, TOKYO, start, start + timedelta(days=7))
    assert [s.astimezone(TOKYO).weekday() for s in slots] == [0, 1, 2, 3, 4]
    wk = parse_schedule("weekly mon 09:00")
    nxt = next_run(wk, TOKYO, start)
    assert nxt.astimezone(TOKYO) == datetime(2026, 1, 5, 9, 0, tzinfo=TOKYO)
    assert "Monday" in describe(wk, TOKYO) and "Asia/Tokyo" in describe(wk, TOKYO)


def test_naive_after_is_utc() -> None:
    sched = parse_schedule("daily 09:00")
    assert next_run(sched, TOKYO, datetime(2026, 1, 1, 1, 0)) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def test_previous_run() -> None:
    from handlers.schedule import previous_run

    sched = parse_schedule("weekdays 09:00")
    sat = datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert previous_run(sched, TOKYO, sat).astimezone(TOKYO) == datetime(2026, 1, 9, 9, 0, tzinfo=TOKYO)
    at = datetime(2026, 1, 9, 0, 0, tzinfo=UTC)  # exactly the slot
    assert previous_run(sched, TOKYO, at) == at
