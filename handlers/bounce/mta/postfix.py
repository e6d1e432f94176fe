"""Postfix: its log lines (smtp/lmtp/local/virtual/pipe/error/qmgr/bounce) and the
quirks of its notices (bounce(8)): the recipient line, the SMTP command named apart.

Field meanings follow Postfix's documentation; `delays=a/b/c/d` is split as
postconf(5) describes (knowledge_facts.md section D).
"""

from __future__ import annotations

import re

from ..fact import Fact
from ..scan import WHOLE_MASK_RE, HumanText, fill_from_text, is_masked_address, valid_ip
from ..smtp import squeeze
from .common import RELAY, split_kv

NAME = "postfix"

# The recipient may be pasted masked: "to=<...>", "to=<***@example.jp>", or emptied to
# "to=,"; the process id and the queue id are often masked too ("smtp[...]: aaa:").
_POSTFIX = re.compile(
    r"(?:(?P<prog>postfix[\w.\-]{0,40}/[\w\-/]{1,40})\[[^\]\s]{1,12}\]:\s+)?(?P<qid>[0-9A-Za-z*×.]{1,24}):\s+"
    r"(?P<rest>(?:to|from)=(?:<[^>\n]{0,600}>|[^,\s<>]{0,320}),.{0,6000})$"
)
_DELAYS = re.compile(
    r"^(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)$"
)


def delays_detail(value: str) -> dict[str, float] | None:
    m = _DELAYS.match(value.strip())
    if not m:
        return None
    a, b, c, d = (float(x) for x in m.groups())
    return {"before_queue": a, "in_queue": b, "connection_setup": c, "transmission": d}


def decode(m: re.Match[str], ht: HumanText) -> Fact | None:
    kv = split_kv(m.group("rest"), "status")
    status_field = kv.get("status", "")
    word, _, paren = status_field.partition(" ")
    word = word.strip().rstrip(",").lower()
    text = paren.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    prog = (m.group("prog") or "").lower()
    fact = Fact(source="postfix-log", extra={"queue_id": m.group("qid")})
    if prog:
        fact.extra["program"] = prog
    if "to" in kv:
        to = kv["to"].strip()
        fact.recipient = to.strip("<>") or None
        if is_masked_address(to.strip("<>")) or WHOLE_MASK_RE.fullmatch(to):
            # Reported as the pasted text shows it: never filled in from another token.
            fact.extra["recipient_masked"] = True
    elif word == "expired":
        fact.sender = kv.get("from", "").strip("<>") or None
        fact.reason = "expired"
        fact.action = "failed"
        fact.diagnostic = squeeze(status_field)
        fact.extra["note"] = "message expired in the queue and was returned to the sender"
        return fact
    else:
        return None
    if kv.get("orig_to"):
        fact.extra["orig_to"] = kv["orig_to"].strip("<>")
    relay = kv.get("relay", "")
    if relay:
        fact.extra["relay"] = relay
        rm = RELAY.match(relay)
        if rm:
            fact.remote_host = rm.group(1).lower().rstrip(".")
            fact.remote_ip = valid_ip(rm.group(2))
            if fact.remote_ip is None:
                fact.extra["remote_ip_masked"] = True
            if rm.group(3):
                fact.extra["remote_port"] = int(rm.group(3))
        elif relay not in ("none", "local"):
            fact.remote_host = relay.lower()
    if kv.get("dsn"):
        fact.status = kv["dsn"]
    if kv.get("delay"):
        fact.extra["delay"] = kv["delay"]
    if kv.get("delays"):
        fact.extra["delays"] = kv["delays"]
        detail = delays_detail(kv["delays"])
        if detail:
            fact.extra["delays_detail"] = detail
    fact.extra["log_status"] = word
    fact.action = {"sent": "delivered", "deferred": "delayed", "bounced": "failed", "expired": "failed"}.get(
        word, word
    )
    if word == "sent":
        fact.reason = "delivered"
    elif word == "expired":
        fact.reason = "expired"
    fact.diag_type = "SMTP" if " said:" in text or text[:3].isdigit() else ""
    fact.command = ht.command(text)
    fill_from_text(fact, text)
    fact.diagnostic = squeeze(text) or squeeze(status_field)
    return fact


def claims(line: str) -> bool:
    """A line that is Postfix's if anyone's: its decoder has the last word on it."""
    return "status=" in line and ("to=" in line or "from=<" in line)


def find(line: str) -> re.Match[str] | None:
    return _POSTFIX.search(line)


# bounce(8)'s per-recipient line, as pasted from a notice: "<rcpt>: text" or "<rcpt> (expanded
# from <alias>): text".
_RCPT_LINE = re.compile(r"<[^<>\s]{1,320}>(?: \(expanded from <[^<>\s]{1,320}>\))?: \S")


def starts_with_recipient_line(text: str) -> bool:
    """Does the text start with bounce(8)'s recipient line ("<rcpt>: connect to ...")?"""
    return bool(_RCPT_LINE.match(text.lstrip()))


def names_command_apart(human: str, diagnostic: str) -> bool:
    """Postfix names the SMTP command ("(in reply to RCPT TO command)") only in the
    notice's human part, not in the DSN's Diagnostic-Code."""
    return "(in reply to " in human.lower() and "(in reply to " not in diagnostic.lower()


def with_command(diagnostic: str, human: str) -> str:
    """The Diagnostic-Code with the command the human part names kept beside the reply."""
    pos = human.lower().find("(in reply to ")
    return diagnostic + " " + human[pos : pos + 40].split(")")[0] + ")"
