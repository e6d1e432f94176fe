"""The one Report/Finding model that crosses from handlers/ to bot/.

SPEC.md fixes the JSON shape; `Report.to_dict()` is the single place that
produces it, so the CLI (`--json`), the terminal renderer and Slack all show
the same facts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Severity = Literal["critical", "warning", "info", "ok", "unknown"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "unknown", "info", "ok")
# Rank used to sort findings "worst first" in every renderer.
SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "unknown": 2, "info": 3, "ok": 4}

ListStatus = Literal["listed", "clean", "unknown"]
ReportKind = Literal["domain", "ip", "spf", "bounce", "message", "reports", "logs"]


def format_ip(value: str) -> str:
    """RFC 5952 text form for IPv6 (and canonical IPv4); other text unchanged."""
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return value


@dataclass
class Finding:
    code: str
    severity: Severity
    title: str
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: list[str] = field(default_factory=list)
    # Which check produced it ("spf", "dmarc", ...): groups the terminal report.
    check: str = ""

    @property
    def group(self) -> str:
        return self.check or self.code.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "evidence": self.evidence,
            "remediation": list(self.remediation),
        }


@dataclass
class BlocklistResult:
    zone: str
    target: str
    status: ListStatus
    codes: list[str] = field(default_factory=list)
    meaning: str = ""
    delist_url: str = ""
    # Extras (not in SPEC's minimum, harmless to JSON consumers).
    name: str = ""
    kind: str = ""  # ip4 / ip6 / domain
    reason_text: str = ""  # TXT record published with a listing
    why_unknown: str = ""
    informational: bool = False
    why_kind: str = ""  # what kind of unknown (knowledge/engine_texts.yaml "why_<kind>")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "zone": self.zone,
            "target": format_ip(self.target),
            "status": self.status,
            "codes": list(self.codes),
            "meaning": self.meaning,
            "delist_url": self.delist_url,
        }
        if self.name:
            out["name"] = self.name
        if self.reason_text:
            out["txt"] = self.reason_text
        if self.why_unknown:
            out["why_unknown"] = self.why_unknown
        if self.why_kind:
            out["why_kind"] = self.why_kind
        if self.informational:
            out["informational"] = True
        return out


@dataclass
class BounceRecord:
    recipient: str | None = None
    status: str | None = None
    reply_code: int | None = None
    reason: str = "undefined"
    provider: str | None = None
    hard: bool | None = None  # Sisimai's meaning: the address itself is dead
    # Was the refusal final? True for 5xx, False for 4xx / delayed, None when nothing says
    # (and for mail that was not refused: delivered, auto-replies, feedback reports).
    permanent: bool | None = None
    remote_host: str | None = None
    remote_ip: str | None = None
    sender_ip: str | None = None
    diagnostic: str = ""
    remediation: list[str] = field(default_factory=list)
    # Extras: plain-language explanation, the sender/domain the bounce names,
    # where the record came from (dsn, log line, smtp reply ...).
    explanation: str = ""
    sender: str | None = None
    action: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The explanation in each language the engine wrote it in, with the case's own notes
    # (provider notes, masked recipient, IPv6): localisation picks one, nothing prints it.
    explanations: dict[str, str] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "recipient": self.recipient,
            "status": self.status,
            "reply_code": self.reply_code,
            "reason": self.reason,
            "provider": self.provider,
            "hard": self.hard,
            "permanent": self.permanent,
            "remote_host": self.remote_host,
            "remote_ip": format_ip(self.remote_ip) if self.remote_ip else None,
            "sender_ip": format_ip(self.sender_ip) if self.sender_ip else None,
            "diagnostic": self.diagnostic,
            "remediation": list(self.remediation),
        }
        if self.explanation:
            out["explanation"] = self.explanation
        if self.sender:
            out["sender"] = self.sender
        if self.action:
            out["action"] = self.action
        if self.source:
            out["source"] = self.source
        if self.extra:
            out.update({k: v for k, v in self.extra.items() if k not in out})
        return out


@dataclass
class Report:
    kind: ReportKind
    subject: str
    findings: list[Finding] = field(default_factory=list)
    blocklists: list[BlocklistResult] = field(default_factory=list)
    spf: dict[str, Any] | None = None
    bounces: list[BounceRecord] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: int = 0
    # Check-specific detail for renderers (records seen, SPF include tree, ...).
    details: dict[str, Any] = field(default_factory=dict)
    # Free-text notes for the reader ("input reduced to its host", ...).
    notes: list[str] = field(default_factory=list)
    # DNS statistics of the run: lets the CLI tell "nothing answered" (exit 3).
    dns_stats: dict[str, int] = field(default_factory=dict)
    lang: str = "en"

    def add(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        return finding

    @property
    def worst(self) -> str:
        if not self.findings:
            return "ok"
        return min((f.severity for f in self.findings), key=lambda s: SEVERITY_RANK[s])

    @property
    def has_critical(self) -> bool:
        return any(f.severity == "critical" for f in self.findings)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: SEVERITY_RANK[f.severity])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "subject": self.subject,
            "checked_at": self.checked_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "duration_ms": int(self.duration_ms),
            "findings": [f.to_dict() for f in self.findings],
            "blocklists": [b.to_dict() for b in self.blocklists],
        }
        out["spf"] = self.spf  # SPEC's shape has the key on every report: null unless an SPF evaluation
        out["bounces"] = [b.to_dict() for b in self.bounces]
        if self.details:
            out["details"] = self.details
        if self.notes:
            out["notes"] = list(self.notes)
        out["lang"] = self.lang
        return out
