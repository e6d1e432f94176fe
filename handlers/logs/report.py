"""The ``logs`` report: SPEC's JSON shape, addresses masked unless asked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from handlers.model import SEVERITY_RANK, Finding

from .tally import Tally
from .timeparse import iso

MAX_PROVIDERS = 40
MAX_REASONS = 5
_ADDRESS = re.compile(r"(?<![\w.+=%-])([\w.+=%-]{1,64})@((?:[\w-]{1,63}\.){1,8}[A-Za-z]{2,24})")


def mask(text: str) -> str:
    """Hide the local part of every address ("***@example.jp"): logs carry personal data."""
    return _ADDRESS.sub(r"***@\2", text) if "@" in text else text


def mask_findings(findings: list[Finding]) -> None:
    """Mask the addresses in findings' texts and the error they quote."""
    for f in findings:
        f.detail = mask(f.detail)
        f.title = mask(f.title)
        if isinstance(f.evidence.get("error"), str):
            f.evidence["error"] = mask(f.evidence["error"])


@dataclass
class LogsReport:
    tally: Tally
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lines: int = 0
    show_addresses: bool = False
    sources: list[str] = field(default_factory=list)
    lang: str = "en"

    @property
    def has_critical(self) -> bool:
        return any(f.severity == "critical" for f in self.findings)

    def text(self, value: str) -> str:
        return value if self.show_addresses else mask(value)

    def providers(self) -> list[dict[str, Any]]:
        t = self.tally
        ranked = sorted(t.providers.items(), key=lambda kv: -(kv[1].attempts + kv[1].expired))
        out: list[dict[str, Any]] = []
        for key, ps in ranked[:MAX_PROVIDERS]:
            out.append({
                "provider": key,
                "delivered": ps.delivered,
                "deferred": ps.deferred,
                "bounced": ps.bounced,
                "expired": ps.expired,
                "reasons": [
                    {"reason": r, "count": n, "example": self.text(ps.examples.get(r, ""))[:500],
                     "remediation": list(ps.remediation.get(r, ()))}
                    for r, n in ps.reasons.most_common(MAX_REASONS)
                ],
                "ipv4": {"delivered": ps.family[4][0], "failed": ps.family[4][1]},
                "ipv6": {"delivered": ps.family[6][0], "failed": ps.family[6][1]},
            })
        rest = ranked[MAX_PROVIDERS:]
        if rest:
            out.append({
                "provider": "other", "reasons": [],
                **{k: sum(getattr(ps, k) for _, ps in rest) for k in ("delivered", "deferred", "bounced", "expired")},
            })
        return out

    def hours(self, top: int = 8) -> list[dict[str, Any]]:
        """Outcomes per hour for the busiest providers (what the chart draws)."""
        t = self.tally
        names = [p["provider"] for p in self.providers()[:top]]
        out: list[dict[str, Any]] = []
        for hour in sorted(t.hours):
            rows = t.hours[hour]
            out.append({
                "hour": iso(hour * 3600.0),
                "providers": {
                    k: dict(zip(("delivered", "deferred", "bounced", "expired"), rows[k], strict=True))
                    for k in names if k in rows
                },
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        t = self.tally
        timelines = [
            {**tl, "events": [{**e, "time": iso(e["time"]), "recipient": self.text(e["recipient"])}
                              for e in tl["events"]]}
            for tl in t.timelines
        ]
        return {
            "kind": "logs",
            "period": {"start": iso(t.start) if t.start is not None else None,
                       "end": iso(t.end) if t.end is not None else None},
            "lines": self.lines,
            "messages": t.messages,
            "totals": {"delivered": t.delivered, "deferred": t.deferred, "bounced": t.bounced,
                       "expired": t.expired, "rejected": t.rejected, "deferrals": t.deferrals,
                       "forwarded": t.forwarded},
            "providers": self.providers(),
            "findings": [f.to_dict() for f in sorted(self.findings, key=lambda f: SEVERITY_RANK[f.severity])],
            "message_outcomes": dict(t.message_outcomes),
            "timelines": timelines,
            "hours": self.hours(),
            "rejects": dict(t.rejects),
            "errors": list(self.errors),
            "lang": self.lang,
        }
