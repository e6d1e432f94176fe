"""Exim: its main log lines (`**` failed, `==` deferred, `=>` `->` delivered) and the
X-Failed-Recipients header of its notices (Google's notices carry it too)."""

from __future__ import annotations

import re

from ..fact import Fact
from ..notice import Notice
from ..scan import WHOLE_MASK_RE, HumanText, fill_from_text, header_addrs, is_masked_address, valid_ip
from ..smtp import squeeze

NAME = "exim"

_EXIM = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?(?: [+-]\d{4})? )?(?:\[\d{1,10}\] )?"
    r"(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<flag>\*\*|==|=>|->) (?P<addr>\S{1,400})(?P<rest>.{0,6000})$"
)
_EXIM_HOST = re.compile(r"\bH=\(?([^\s\]\[()]{1,255})\)?\s\[([0-9A-Fa-f:.]{2,45})\]")
_EXIM_C = re.compile(r'\bC="([^"]{0,2000})"')
def decode(m: re.Match[str], ht: HumanText) -> Fact:
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


def claims(line: str) -> bool:
    return " ** " in line or " == " in line or " => " in line or " -> " in line


def find(line: str) -> re.Match[str] | None:
    return _EXIM.match(line)


def failed_recipients(n: Notice) -> list[str]:
    """X-Failed-Recipients (Exim, Google), masked entries ("<...>", "(redacted)") included."""
    value = n.header("x-failed-recipients")
    found = header_addrs(value)
    found = found or [m.group(0).lower() for m in WHOLE_MASK_RE.finditer(value)]
    return found or ([value.strip()] if value.strip() and is_masked_address(value.strip()) else [])
