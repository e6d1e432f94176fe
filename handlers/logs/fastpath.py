"""The hot path: Postfix ``status=sent`` lines with a syslog timestamp, most of any log.

They are counted in bulk -- one regex match and one Counter increment per line, keyed
by (hour, recipient domain, relay host, IP family) -- and judged once per key when the
file ends. Anything unusual (another syslog name, a content filter, local forwarding, a
``size=`` field, a program pflogsumm treats apart) is left to the full path in
postfix.py, which counts it the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .reader import MAX_LINE
from .tally import MAX_EVENTS, SENT_ONLY, Tally

if TYPE_CHECKING:
    from .classify import Classifier
    from .timeparse import Clock

# pflogsumm's syslog timestamp and program/queue-id rules and its delivery regex, anchored.
_SENT = re.compile(
    rb"([A-Z][a-z]{2} {1,2}\d{1,2} \d\d):(\d\d):(\d\d) \S+ postfix(?:/(?:smtps|submission))?/"
    rb"(?!(?:cleanup|smtpd|postscreen|master)\[)([^\[:]*)\[\d+\]: "
    rb"([^:\s]+): to=<((?:[^>@]*@)?([^>]*))>, (?:orig_to=<[^>]*>, )?relay=([^,\[]+)(?:\[([^\]]*)\])?(?::\d+)?, "
    rb"(?:conn_use=[^,]+, )?delay=[^,]+, (?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=sent \("
)
_SLOW_QIDS = frozenset({b"warning", b"fatal", b"panic", b"reject", b"reject_warning", b"hold", b"discard"})


class SentCounter:
    def __init__(self, tally: Tally, clock: Clock) -> None:
        self.t = tally
        self.clock = clock
        self.counts: dict[tuple[int, bytes, bytes, int], int] = {}
        self.example: dict[tuple[bytes, bytes, int], bytes] = {}
        self.hours: dict[bytes, int] = {}
        self.last: re.Match[bytes] | None = None
        self.delivered = 0
        self.open = tally.open

    def eligible(self, block: bytes, start: int, stop: int) -> re.Match[bytes] | None:
        """The match of the line at ``start`` when it is a plain status=sent line whose
        ``status=sent (`` ends at ``stop``."""
        m = _SENT.match(block, start, stop)
        if m is None:
            return None
        ip = m.group(9)
        # No [ip]: relay=local, virtual, a socket -- the full path sorts those out.
        if not ip or ip[:4] == b"127." or ip == b"::1" or m.group(5) in _SLOW_QIDS:
            return None
        eol = block.find(b"\n", stop)
        if block.find(b", size=", stop, eol) >= 0 or eol - start > MAX_LINE:
            return None  # pflogsumm would take it for a message's size line; or too long
        return m

    def count(self, m: re.Match[bytes]) -> bool:
        """Count one eligible line; False when its time cannot be read (use the full path)."""
        hour_text, mm, ss, _cmd, qid, rcpt, domain, host, ip = m.groups()
        hour = self.hours.get(hour_text)
        if hour is None:
            block = m.string
            line = block[m.start() : block.find(b"\n", m.start())]
            st = self.clock.parse(line.decode("utf-8", "replace"))  # keeps the clock's year in stream order
            if st is None:
                return False
            self.t.seen(st.epoch)
            hour = self.hours[hour_text] = int(st.epoch // 3600)
        self.last = m
        # Case is folded when the counts are judged (flush), not per line.
        key = (hour, domain, host, 6 if b":" in ip else 4)
        counts = self.counts
        n = counts.get(key)
        if n is None:
            counts[key] = 1
            if key[1:] not in self.example:
                block = m.string
                self.example[key[1:]] = block[m.start() : block.find(b"\n", m.start())]
        else:
            counts[key] = n + 1
        self.delivered += 1
        q = qid.decode("ascii", "replace")
        msg = self.open.get(q)
        if msg is SENT_ONLY:
            return True
        if msg is None:
            self.t.sent_only(q)
            return True
        # A message with a history (an earlier deferral): its timeline gets this delivery.
        self.t.sent_only(q)
        who = rcpt.decode("utf-8", "replace")
        msg.pending.pop(who, None)
        if len(msg.events) < MAX_EVENTS:
            msg.events.append((hour * 3600.0 + int(mm) * 60 + int(ss), "delivered", who,
                               who.rpartition("@")[2].lower(), "delivered"))
        return True

    def flush(self, classifier: Classifier) -> None:
        """Judge each (domain, relay, family) once and add the counts to the tally."""
        from .postfix import record_sent

        for (hour, domain, host, family), n in self.counts.items():
            line = self.example[(domain, host, family)].decode("utf-8", "replace")
            record_sent(self.t, classifier, hour * 3600.0, line, domain.decode("utf-8", "replace").lower(),
                        host.decode("utf-8", "replace").lower().rstrip("."), family, n)
        if self.last is not None:
            m = self.last
            last_hour = self.hours.get(m.group(1))
            if last_hour is not None:
                self.t.seen(last_hour * 3600.0 + int(m.group(2)) * 60 + int(m.group(3)))
            self.last = None
        self.t.delivered += self.delivered
        self.delivered = 0
        self.counts.clear()
        self.hours.clear()
