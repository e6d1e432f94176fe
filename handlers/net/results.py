"""What a lookup ended with: the one result type every check reads (no I/O, no dnspython).

SPEC: never a verdict from an answer not received. So every lookup ends with an
explicit `Outcome`, and only ANSWER, NXDOMAIN and NODATA are `definitive`; a timeout,
SERVFAIL (RFC 1035 §4.1.1), REFUSED, a malformed or lame answer, a spent budget or a
skipped question is not, and the checks turn it into `unknown`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    ANSWER = "answer"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    ERROR = "error"  # malformed response, network error, other rcode
    INVALID = "invalid"  # the name itself can't be asked (label > 63, ...)
    BUDGET = "budget"  # not asked: the audit's DNS query budget was spent
    SKIPPED = "skipped"  # not asked: its answer could no longer change the verdict (error says why)


@dataclass(frozen=True)
class DNSResult:
    name: str
    rdtype: str
    outcome: Outcome
    records: tuple[Any, ...] = ()
    ttl: int = 0
    error: str = ""
    authenticated: bool = False  # AD bit from a validating resolver
    server: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ANSWER

    @property
    def definitive(self) -> bool:
        """True when the server gave a real answer (records, NXDOMAIN or NODATA)."""
        return self.outcome in (Outcome.ANSWER, Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def void(self) -> bool:
        """RFC 7208 §4.6.4 'void lookup': NXDOMAIN or an empty answer."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA)

    @property
    def failed(self) -> bool:
        return not self.definitive

    def describe(self) -> str:
        """Short human text for a failed lookup (used in `unknown` findings)."""
        base = {
            Outcome.TIMEOUT: "no answer (timeout)",
            Outcome.SERVFAIL: "the resolver answered SERVFAIL",
            Outcome.REFUSED: "the resolver refused the query",
            Outcome.ERROR: "the lookup failed",
            Outcome.INVALID: "the name is not valid in DNS",
            Outcome.BUDGET: "not asked: this check's DNS query budget is spent",
            Outcome.SKIPPED: "not asked",
            Outcome.NXDOMAIN: "the name does not exist",
            Outcome.NODATA: "no record of that type",
            Outcome.ANSWER: "answered",
        }[self.outcome]
        if not self.error or self.definitive or self.error.upper() in base.upper():
            return base  # "the resolver answered SERVFAIL", not "...SERVFAIL: SERVFAIL"
        return f"{base}: {self.error}"

    # Convenience views -------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """TXT records with their strings joined (RFC 7208 §3.3), as text."""
        return [b.decode("utf-8", "replace") for b in self.text_bytes]

    @property
    def text_bytes(self) -> list[bytes]:
        out = []
        for r in self.records:
            strings = getattr(r, "strings", None)
            if strings is not None:
                out.append(b"".join(strings))
        return out

    @property
    def addresses(self) -> list[str]:
        return [r.address for r in self.records if hasattr(r, "address")]

    @property
    def targets(self) -> list[str]:
        """PTR / CNAME / NS targets as text without the trailing dot."""
        return [r.target.to_text(omit_final_dot=True) for r in self.records if hasattr(r, "target")]

    @property
    def mx(self) -> list[tuple[int, str]]:
        return sorted(
            (r.preference, r.exchange.to_text(omit_final_dot=True)) for r in self.records if hasattr(r, "exchange")
        )


@dataclass(frozen=True)
class GroupLimit:
    """Manners towards one group of names (one blocklist): in flight at once, average
    queries per second, and the burst allowed before the rate applies."""

    in_flight: int = 32
    qps: float = 200.0
    burst: int = 32


@dataclass
class DNSStats:
    asked: int = 0  # packets sent, retries included
    answered: int = 0  # definitive answers
    failed: int = 0  # attempts without a definitive answer
    lookups: int = 0  # distinct (name, type) lookups performed
    cache_hits: int = 0  # asks served from this run's cache (or its in-flight query)

    def as_dict(self) -> dict[str, int]:
        return {"asked": self.asked, "answered": self.answered, "failed": self.failed,
                "lookups": self.lookups, "cache_hits": self.cache_hits}
