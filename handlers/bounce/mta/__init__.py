"""One decoder module per MTA family: how its log lines (and, where it has them, the
quirks of its notices) are read. Adding a family is one module and one line here.

A log decoder is a module with `NAME`, `claims(line)` (a cheap test: is the line in
this family's shape?), `find(line)` (its pattern) and `decode(match, human_text)`
(one Fact per recipient line, or None for a line that carries no delivery). Decoders
are tried in `LOG_DECODERS` order; the first that claims and finds a line has the
last word on it, even when it decodes to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from ..fact import Fact
from ..scan import HumanText
from . import exim, postfix, sendmail


class LogDecoder(Protocol):
    NAME: str

    def claims(self, line: str) -> bool: ...

    def find(self, line: str) -> re.Match[str] | None: ...

    def decode(self, m: re.Match[str], ht: HumanText) -> Fact | None: ...


# Sendmail first: its `stat=` lines also carry `to=`; Postfix's `status=` next.
LOG_DECODERS: Sequence[LogDecoder] = (sendmail, postfix, exim)


def parse_log_lines(lines: list[str], ht: HumanText) -> list[Fact]:
    """One Fact per recipient line of any known MTA's log."""
    facts: list[Fact] = []
    for line in lines:
        if "=" not in line and "**" not in line:
            continue
        s = line.strip()
        for decoder in LOG_DECODERS:
            m = decoder.find(s) if decoder.claims(s) else None
            if m is None:
                continue
            fact = decoder.decode(m, ht)
            if fact is not None:
                facts.append(fact)
            break
    return facts


__all__ = ["LOG_DECODERS", "LogDecoder", "parse_log_lines"]
