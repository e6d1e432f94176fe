"""Reading a log that is still being written: whole lines only, across rotation, and a
sliding window for rate jumps (the engine under `mailcheck logs --follow`)."""

from __future__ import annotations

import gzip
from pathlib import Path

from handlers.logs import LiveLog, Tail, looks_like_log
from handlers.logs.timeparse import Clock
from tests.support.maillogs import gmail_day, yahoo_bounces

FIX = Path(__file__).parent / "fixtures" / "logs"


def test_a_half_written_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    tail = Tail(str(log))
    with log.open("a") as fh:
        fh.write("Dec  4 09:00:00 mta postfix/qmgr[1]: ABC: removed\nDec  4 09:00:01 mta postf")
    assert tail.read() == b"Dec  4 09:00:00 mta postfix/qmgr[1]: ABC: removed\n"
    with log.open("a") as fh:
        fh.write("ix/qmgr[1]: DEF: removed\n")
    assert tail.read() == b"Dec  4 09:00:01 mta postfix/qmgr[1]: DEF: removed\n"
    assert tail.read() == b""


def test_renamed_and_recreated_or_truncated_in_place_both_continue_with_the_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("old line before the start\n")
    tail = Tail(str(log))
    log.rename(tmp_path / "mail.log.1")
    with (tmp_path / "mail.log.1").open("a") as fh:
        fh.write("last line of the old file\n")
    log.write_text("first line of the new file\n")
    assert tail.read() == b"last line of the old file\nfirst line of the new file\n"
    assert tail.rotations == 1
    log.write_text("")  # copytruncate
    assert tail.read() == b""
    log.write_text("after the truncation\n")
    assert tail.read() == b"after the truncation\n"
    assert tail.rotations == 2


def test_each_period_is_summarised_apart_and_a_jump_is_found_across_periods() -> None:
    live = LiveLog()
    clock = Clock(1_800_000_000.0)
    live.feed(gmail_day(hours=range(8, 11), limited_from=99).encode(), clock)
    first = live.take_period()
    assert first is not None and first.to_dict()["totals"]["delivered"] == 60
    assert live.jumps() == []
    live.feed(gmail_day(hours=range(11, 12), limited_from=11, prefix="9").encode(), clock)
    second = live.take_period()
    assert second is not None
    assert {k: second.to_dict()["totals"][k] for k in ("delivered", "deferred")} == {"delivered": 10, "deferred": 10}
    [jump] = live.jumps()
    assert jump.evidence["provider"] == "google" and jump.evidence["when"].endswith("T11:00:00")
    assert live.take_period() is None  # nothing new


def test_hours_older_than_the_window_no_longer_count_as_the_baseline() -> None:
    live = LiveLog(window_hours=2)
    clock = Clock(1_800_000_000.0)
    live.feed(gmail_day(hours=range(8, 13), limited_from=11).encode(), clock)
    # Only 11:00 and 12:00 are left: no good hour before the jump to measure it against.
    assert live.jumps() == []


def test_a_whole_mail_log_is_told_from_a_bounce_or_other_text() -> None:
    assert looks_like_log((FIX / "postfix_cases.log").read_bytes())
    assert looks_like_log(gzip.compress(gmail_day().encode()))
    assert looks_like_log((FIX / "exim_mainlog").read_bytes())
    assert not looks_like_log(yahoo_bounces(count=2).encode())  # two lines: a bounce to explain
    assert not looks_like_log(b"Hello,\nplease find the report attached.\n" * 20)
    assert not looks_like_log(b"\x1f\x8b not really gzip")
