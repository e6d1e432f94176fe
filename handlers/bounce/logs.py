"""MTA log lines: Postfix (smtp/lmtp/local/virtual/pipe/error/qmgr/bounce),
Exim main log (`**` `==` `=>` `->`) and Sendmail `stat=`. One Fact per recipient line.

Field meanings follow the MTAs' documentation; Postfix's `delays=a/b/c/d` is
split as postconf(5) describes (knowledge_facts.md section D).
"""

from __future__ import annotations

import re

from .fact import Fact
from .scan import WHOLE_MASK_RE, HumanText, fill_from_text, is_masked_address, valid_ip
from .smtp import squeeze

# The recipient may be pasted masked: "to=<...>", "to=<***@example.jp>", or emptied to
# "to=,"; the process id and the queue id are often masked too ("smtp[...]: aaa:").
_POSTFIX = re.compile(
    r"(?:(?P<prog>postfix[\w.\-]{0,40}/[\w\-/]{1,40})\[[^\]\s]{1,12}\]:\s+)?(?P<qid>[0-9A-Za-z*×.]{1,24}):\s+"
    r"(?P<rest>(?:to|from)=(?:<[^>\n]{0,600}>|[^,\s<>]{0,320}),.{0,6000})$"
)
_EXIM = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?(?: [+-]\d{4})? )?(?:\[\d{1,10}\] )?"
    r"(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<flag>\*\*|==|=>|->) (?P<addr>\S{1,400})(?P<rest>.{0,6000})$"
)
_SENDMAIL = re.compile(
    r"(?:sendmail|sm-mta|sm-msp-queue)\[\d{1,10}\]:\s+(?P<qid>[0-9A-Za-z*×.]{3,24}):\s+to=(?P<to>[^,\n]{0,1000}),(?P<rest>.{0,6000}stat=.{0,4000})$"
)
_KV = re.compile(r"(?:^|,\s)([a-z_]{2,12})=")
# relay=host[ip]:port; the ip may be masked ("[*.*.*.*]", "[IP]", "[$(_ipsrc)]").
_RELAY = re.compile(r"^\[?([^\[\]\s:]{1,255})\]?(?:\.)?\s?\[([^\[\]\s]{1,45})\](?::(\d{1,5}))?")
_EXIM_HOST = re.compile(r"\bH=\(?([^\s\]\[()]{1,255})\)?\s\[([0-9A-Fa-f:.]{2,45})\]")
_EXIM_C = re.compile(r'\bC="([^"]{0,2000})"')
_DELAYS = re.compile(
    r"^(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)/(\d{1,9}(?:\.\d{1,6})?)$"
)


def _split_kv(rest: str, last: str) -> dict[str, str]:
    """Split `a=1, b=<x>, status=...` keeping everything after `last=` as one value."""
    out: dict[str, str] = {}
    cut = rest.find(f"{last}=")
    tail = ""
    if cut >= 0:
        tail = rest[cut + len(last) + 1 :]
        rest = rest[:cut]
    marks = [(m.start(), m.end(), m.group(1)) for m in _KV.finditer(rest)]
    for n, (_, end, key) in enumerate(marks):
        stop = marks[n + 1][0] if n + 1 < len(marks) else len(rest)
        out[key] = rest[end:stop].strip().rstrip(",").strip()
    if cut >= 0:
        out[last] = tail.strip()
    return out


def delays_detail(value: str) -> dict[str, float] | None:
    m = _DELAYS.match(value.strip())
    if not m:
        return None
    a, b, c, d = (float(x) for x in m.groups())
    return {"before_queue": a, "in_queue": b, "connection_setup": c, "transmission": d}


def _postfix(m: re.Match[str], ht: HumanText) -> Fact | None:
    kv = _split_kv(m.group("rest"), "status")
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
        rm = _RELAY.match(relay)
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


def _exim(m: re.Match[str], ht: HumanText) -> Fact:
    flag = m.group("flag")
    rest = m.group("rest")
    fact = Fact(
        source="exim-log", recipient=m.group("addr").strip("<>:"), extra={"message_id": m.group("id")}
    )
    hm = _EXIM_HOST.search(rest)
    if hm:
        fact.remote_host = hm.group(1).lower()
        fact.remote_ip = valid_ip(hm.group(2))
    if flag in ("=>", "->"):
        fact.action = "delivered"
        fact.reason = "delivered"
        cm = _EXIM_C.search(rest)
        fact.diagnostic = squeeze(cm.group(1)) if cm else squeeze(rest)
        fact.status = "2.0.0"
        fill_from_text(fact, fact.diagnostic)
        return fact
    fact.action = "delayed" if flag == "==" else "failed"
    pos = rest.find(": ")
    text = rest[pos + 2 :] if pos >= 0 else rest
    fact.command = ht.command(text)
    fact.diag_type = "SMTP" if "smtp error" in text.lower() else ""
    fill_from_text(fact, text)
    fact.diagnostic = squeeze(text)
    return fact


def _sendmail(m: re.Match[str], ht: HumanText) -> Fact:
    kv = _split_kv("to=x, " + m.group("rest").lstrip(", "), "stat")
    stat = kv.get("stat", "")
    to = m.group("to").strip()
    fact = Fact(source="sendmail-log", recipient=to.strip("<>") or None, extra={"queue_id": m.group("qid")})
    if not to or WHOLE_MASK_RE.fullmatch(to) or is_masked_address(to.strip("<>")):
        fact.extra["recipient_masked"] = True
    relay = kv.get("relay", "")
    rm = _RELAY.match(relay) if relay else None
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


def parse_log_lines(lines: list[str], ht: HumanText) -> list[Fact]:
    facts: list[Fact] = []
    for line in lines:
        if "=" not in line and "**" not in line:
            continue
        s = line.strip()
        if "stat=" in s:
            sm = _SENDMAIL.search(s)
            if sm:
                facts.append(_sendmail(sm, ht))
                continue
        if "status=" in s and ("to=" in s or "from=<" in s):
            pm = _POSTFIX.search(s)
            if pm:
                fact = _postfix(pm, ht)
                if fact:
                    facts.append(fact)
                continue
        if " ** " in s or " == " in s or " => " in s or " -> " in s:
            em = _EXIM.match(s)
            if em:
                facts.append(_exim(em, ht))
    return facts
