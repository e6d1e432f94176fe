"""Sendmail: its log lines (`to=..., stat=...`)."""

from __future__ import annotations

import re

from ..fact import Fact
from ..scan import WHOLE_MASK_RE, HumanText, fill_from_text, is_masked_address, valid_ip
from ..smtp import squeeze
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
