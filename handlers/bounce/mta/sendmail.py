"""Sendmail: its log lines (`to=..., stat=...`) and the session transcript its
notices quote ("<<< 550-5.7.1 ..."), which holds the whole remote reply."""

from __future__ import annotations

import re

from ..fact import Fact
from ..scan import WHOLE_MASK_RE, HumanText, fill_from_text, is_masked_address, valid_ip
from ..smtp import LINE_PREFIX_RE, join_reply_lines, squeeze
from ..textin import clean_lines
from .common import RELAY, split_kv

NAME = "sendmail"

_SENDMAIL = re.compile(
    r"(?:sendmail|sm-mta|sm-msp-queue)\[\d{1,10}\]:\s+(?P<qid>[0-9A-Za-z*×.]{3,24}):\s+to=(?P<to>[^,\n]{0,1000}),(?P<rest>.{0,6000}stat=.{0,4000})$"
)
def decode(m: re.Match[str], ht: HumanText) -> Fact:
    kv = split_kv("to=x, " + m.group("rest").lstrip(", "), "stat")
    stat = kv.get("stat", "")
    to = m.group("to").strip()
    fact = Fact(source="sendmail-log", recipient=to.strip("<>") or None, extra={"queue_id": m.group("qid")})
    if not to or WHOLE_MASK_RE.fullmatch(to) or is_masked_address(to.strip("<>")):
        fact.extra["recipient_masked"] = True
    relay = kv.get("relay", "")
    rm = RELAY.match(relay) if relay else None
    if rm:
        fact.remote_host = rm.group(1).lower().rstrip(".")
        fact.remote_ip = valid_ip(rm.group(2))
    elif relay:
        fact.remote_host = relay.split()[0].rstrip(".").lower()
    if kv.get("dsn"):
        fact.status = kv["dsn"]
    low = stat.lower()
    if low.startswith("sent"):
        fact.action, fact.reason = "delivered", "delivered"
    elif low.startswith("deferred"):
        fact.action = "delayed"
    else:
        fact.action = "failed"
    fact.command = ht.command(stat)
    fill_from_text(fact, stat)
    fact.diagnostic = squeeze(stat)
    fact.diag_type = "SMTP" if fact.reply_code else ""
    return fact


def claims(line: str) -> bool:
    return "stat=" in line


def find(line: str) -> re.Match[str] | None:
    return _SENDMAIL.search(line)


def transcript_replies(text: str, single: bool = False) -> str:
    """The server's lines ("<<< 550-5.7.1 ...") of the first error reply in an SMTP transcript.

    Only multi-line replies unless `single`.
    """
    lines: list[str] = []
    for line in clean_lines(text[:20000]):
        if line.startswith("<<< ") and (lines or line[4:5] in ("4", "5")):
            lines.append(line[4:])
            if LINE_PREFIX_RE.match(line[4:]) and line[7:8] == " ":
                break  # the last line of a multi-line reply ("550 5.7.1 ...")
        elif lines:
            break
    return join_reply_lines(lines) if len(lines) > 1 or (single and lines) else ""


def whole_reply(diagnostic: str, replies: str) -> str:
    """Sendmail cuts Diagnostic-Code to the first line of a multi-line reply; the session
    transcript in the notice (`replies`, from transcript_replies) has all of it."""
    if diagnostic[:40] in replies and len(replies) > len(diagnostic):
        return replies
    return diagnostic
