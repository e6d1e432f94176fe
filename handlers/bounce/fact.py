"""What the parsers extract for one recipient, before the reason is decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fact:
    recipient: str | None = None
    status: str | None = None  # RFC 3463 code from a Status: field or the MTA's own text
    reply_code: int | None = None
    diagnostic: str = ""  # the remote reply or the MTA's error text, one line
    diag_type: str = ""  # "SMTP", "X-UNIX", "X-POSTFIX" ... ("" = not said)
    action: str = ""  # failed / delayed / delivered / relayed / expanded
    command: str = ""  # SMTP command the reply answered: CONN EHLO HELO MAIL RCPT DATA STARTTLS
    remote_host: str | None = None
    remote_ip: str | None = None
    sender_ip: str | None = None
    sender: str | None = None
    reason: str = ""  # set by a format that knows the reason (ARF, auto-reply, log status)
    source: str = ""  # dsn / text / log / smtp-reply / arf / autoreply
    context: str = ""  # wider notice text around this recipient (subject, human part)
    extra: dict[str, Any] = field(default_factory=dict)
