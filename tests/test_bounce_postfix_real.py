"""Real Postfix 3.7 output, as an admin pastes it: every field right.

The fixtures in tests/fixtures/postfix were written by a real Postfix run
(`tools/postfix_capture.py`): its own log lines and the DSNs it sent back, for
deliveries to scripted receivers that answer with the providers' documented
wording. Each recipient's expected reason and provider sits in cases.json.
"""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from handlers.bounce import analyse_bounce
from handlers.model import BounceRecord

FIXTURES = Path(__file__).parent / "fixtures" / "postfix"
CASES = json.loads((FIXTURES / "cases.json").read_text())
EXPECT: dict[str, dict[str, Any]] = CASES["expect"]
LOG_LINES = [ln for ln in (FIXTURES / "maillog").read_text().splitlines() if " to=<" in ln and "status=" in ln]
DSNS = sorted(FIXTURES.glob("dsn-*.eml"))


def _reply_code(text: str) -> int | None:
    m = re.match(r"([245]\d\d)[ -]", text)
    return int(m.group(1)) if m else None


def _check(b: BounceRecord, want: dict[str, Any], where: str) -> None:
    assert b.reason in want["reason"], f"{where}: reason {b.reason}, expected one of {want['reason']}"
    if "provider" in want:
        assert b.provider == want["provider"], f"{where}: provider {b.provider}"


@pytest.mark.parametrize("line", LOG_LINES, ids=lambda ln: ln.split("to=<")[1].split(">")[0] + "@" + ln[16:31])
def test_a_real_postfix_log_line_gives_the_recipient_status_reply_and_reason(line: str) -> None:
    rcpt = line.split("to=<")[1].split(">")[0]
    if rcpt not in EXPECT:
        pytest.skip("a DSN going back to the sender")
    [b] = analyse_bounce(line).bounces
    assert b.recipient == rcpt
    assert b.status == re.search(r"dsn=(\d\.\d{1,3}\.\d{1,3})", line).group(1)  # type: ignore[union-attr]
    said = re.search(r" said: ([245]\d\d)[ -]", line)
    if said:
        assert b.reply_code == int(said.group(1))
    relay = re.search(r"relay=([^\[,]+)\[", line)
    if relay:
        assert b.remote_host == relay.group(1)
    _check(b, EXPECT[rcpt], line[:60])


@pytest.mark.parametrize("path", DSNS, ids=lambda p: p.name)
def test_a_real_postfix_dsn_gives_each_recipient_as_its_delivery_status_says(path: Path) -> None:
    raw = path.read_bytes()
    report = analyse_bounce(raw)
    msg = message_from_bytes(raw)
    status_part = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
    payload = status_part.get_payload()
    fields: dict[str, str] = {}
    for block in payload if isinstance(payload, list) else []:
        for k, v in block.items():
            fields.setdefault(k.lower(), str(v))
    rcpt = fields["final-recipient"].split(";", 1)[1].strip()
    [b] = report.bounces
    assert b.recipient == rcpt
    assert b.status == fields["status"].split()[0]
    assert b.action == fields["action"].split()[0]
    diag = fields.get("diagnostic-code", "").split(";", 1)[-1].strip()
    code = _reply_code(diag)
    if code:
        # A reply whose class disagrees with the DSN's status (Postfix defers a 554 greeting
        # as 4.7.1) is not reported as the reply code, as Sisimai does.
        assert b.reply_code == (code if str(code)[0] == b.status[0] else None)
    _check(b, EXPECT[rcpt], path.name)


def test_the_capture_covers_every_outcome_postfix_logs() -> None:
    words = {re.search(r"status=(\w+)", ln).group(1) for ln in LOG_LINES}  # type: ignore[union-attr]
    assert {"sent", "deferred", "bounced"} <= words
    subjects = {message_from_bytes(p.read_bytes())["Subject"] for p in DSNS}
    assert {"Undelivered Mail Returned to Sender", "Delayed Mail (still being retried)"} <= subjects
