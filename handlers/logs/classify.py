"""Provider and reason of a delivery attempt, from the bounce engine, cached per distinct reply.

A day of log repeats the same few hundred replies with different queue IDs, addresses
and timestamps in them. The cache key keeps the reply's plain words (tokens of letters
only: no IDs, addresses, hosts or IPs), its status code and the answering host, so the
engine runs once per kind of reply and memory stays bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from handlers.bounce.engine import classify_log_line

_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b|\b[245]\d\d\b")
_CACHE_MAX = 20000
_NETWORK = re.compile(r"connect to |timed out|Connection refused|No route to host|Network is unreachable|"
                      r"lost connection", re.I)


@dataclass(frozen=True)
class Verdict:
    provider: str | None
    reason: str
    remediation: tuple[str, ...] = ()
    sender_ip: str | None = None
    diagnostic: str = ""
    status: str | None = None


@dataclass
class Classifier:
    cache: dict[tuple[str, ...], Verdict] = field(default_factory=dict)
    runs: int = 0

    def classify(self, line: str, word: str, host: str, domain: str, family: str, text: str) -> Verdict:
        if word == "sent":
            key: tuple[str, ...] = (word, host, domain, family)
        else:
            sm = _STATUS.search(text, 0, 400)
            words = " ".join([w for w in text[:600].split() if w.isalpha()])
            key = (word, host, domain, family, sm.group(0) if sm else "", words)
        found = self.cache.get(key)
        if found is not None:
            return found
        self.runs += 1
        rec = None
        try:
            rec = classify_log_line(line)
        except Exception:  # one odd line must not stop a whole log; it is counted unclassified
            rec = None
        if rec is None:
            verdict = Verdict(provider=None, reason="undefined")
        else:
            reason = rec.reason
            if word == "deferred" and reason == "expired":
                # The engine's last resort for a delayed notice; one deferral has not expired.
                reason = "networkerror" if _NETWORK.search(text) else "undefined"
            verdict = Verdict(
                provider=rec.provider,
                reason=reason,
                remediation=tuple(rec.remediation),
                sender_ip=rec.sender_ip,
                diagnostic=rec.diagnostic,
                status=rec.status,
            )
        if len(self.cache) >= _CACHE_MAX:
            self.cache.clear()
        self.cache[key] = verdict
        return verdict
