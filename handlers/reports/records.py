"""What a parsed receiver report is: the shape SPEC.md fixes for `mailcheck reports --json`.

`ParsedReport.to_dict()` gives SPEC's JSON for one report (plus a few extra keys a
summary needs: per-source authentication detail, the published policy, TLS-RPT
policies); `ParsedReport.from_dict()` reads it back, so storage can keep reports as
JSON and a later summary compares with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ReportType = Literal["dmarc-aggregate", "dmarc-failure", "tls-rpt"]
REPORT_TYPES: tuple[str, ...] = ("dmarc-aggregate", "dmarc-failure", "tls-rpt")


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        out = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return out if out.tzinfo else out.replace(tzinfo=UTC)


@dataclass
class AuthResult:
    """One DKIM signature or SPF check as the receiver saw it (auth_results)."""

    method: str  # "dkim" | "spf"
    domain: str
    result: str
    selector: str = ""  # DKIM only
    scope: str = ""  # SPF only: mfrom / helo
    messages: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"domain": self.domain, "result": self.result, "messages": self.messages}
        if self.method == "dkim":
            out["selector"] = self.selector
        elif self.scope:
            out["scope"] = self.scope
        return out

    @classmethod
    def from_dict(cls, method: str, d: dict[str, Any]) -> AuthResult:
        return cls(method=method, domain=str(d.get("domain") or ""), result=str(d.get("result") or ""),
                   selector=str(d.get("selector") or ""), scope=str(d.get("scope") or ""),
                   messages=int(d.get("messages") or 0))


@dataclass
class Source:
    """Every row of one aggregate report from one source IP, added up.

    `dmarc` is "pass" when every message passed DMARC (policy-evaluated DKIM or SPF
    pass), "fail" when none did and "mixed" otherwise; `spf_aligned` / `dkim_aligned`
    are true only when every message had that aligned pass.
    """

    ip: str
    messages: int = 0
    pass_messages: int = 0
    spf_aligned_messages: int = 0
    dkim_aligned_messages: int = 0
    disposition: str = "none"
    dispositions: dict[str, int] = field(default_factory=dict)
    header_from: list[str] = field(default_factory=list)
    envelope_from: list[str] = field(default_factory=list)
    dkim: list[AuthResult] = field(default_factory=list)
    spf: list[AuthResult] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # policy override reasons (forwarded, ...)
    ptr: str | None = None
    provider: str | None = None
    blocklists: list[str] | None = None  # zones listing the IP, when looked up

    @property
    def dmarc(self) -> str:
        if self.pass_messages >= self.messages:
            return "pass"
        return "fail" if self.pass_messages == 0 else "mixed"

    @property
    def fail_messages(self) -> int:
        return self.messages - self.pass_messages

    @property
    def spf_aligned(self) -> bool:
        return self.messages > 0 and self.spf_aligned_messages >= self.messages

    @property
    def dkim_aligned(self) -> bool:
        return self.messages > 0 and self.dkim_aligned_messages >= self.messages

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ip": self.ip,
            "messages": self.messages,
            "dmarc": self.dmarc,
            "spf_aligned": self.spf_aligned,
            "dkim_aligned": self.dkim_aligned,
            "disposition": self.disposition,
            "ptr": self.ptr,
            "provider": self.provider,
            # Extras (not in SPEC's minimum, harmless to JSON consumers): what a summary
            # needs to say why a source failed.
            "dmarc_pass": self.pass_messages,
            "spf_aligned_messages": self.spf_aligned_messages,
            "dkim_aligned_messages": self.dkim_aligned_messages,
            "dispositions": dict(self.dispositions),
            "header_from": list(self.header_from),
            "envelope_from": list(self.envelope_from),
            "dkim": [a.to_dict() for a in self.dkim],
            "spf": [a.to_dict() for a in self.spf],
            "reasons": list(self.reasons),
        }
        if self.blocklists is not None:
            out["blocklists"] = list(self.blocklists)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        messages = int(d.get("messages") or 0)
        dmarc = str(d.get("dmarc") or "")
        passed = d.get("dmarc_pass")
        if passed is None:  # SPEC's minimum only: the verdict tells all or nothing
            passed = messages if dmarc == "pass" else 0
        spf_n = d.get("spf_aligned_messages")
        dkim_n = d.get("dkim_aligned_messages")
        return cls(
            ip=str(d.get("ip") or ""),
            messages=messages,
            pass_messages=int(passed),
            spf_aligned_messages=int(spf_n if spf_n is not None else (messages if d.get("spf_aligned") else 0)),
            dkim_aligned_messages=int(dkim_n if dkim_n is not None else (messages if d.get("dkim_aligned") else 0)),
            disposition=str(d.get("disposition") or "none"),
            dispositions={str(k): int(v) for k, v in (d.get("dispositions") or {}).items()},
            header_from=[str(x) for x in d.get("header_from") or []],
            envelope_from=[str(x) for x in d.get("envelope_from") or []],
            dkim=[AuthResult.from_dict("dkim", x) for x in d.get("dkim") or [] if isinstance(x, dict)],
            spf=[AuthResult.from_dict("spf", x) for x in d.get("spf") or [] if isinstance(x, dict)],
            reasons=[str(x) for x in d.get("reasons") or []],
            ptr=d.get("ptr"),
            provider=d.get("provider"),
            blocklists=list(d["blocklists"]) if isinstance(d.get("blocklists"), list) else None,
        )


@dataclass
class TLSFailure:
    result_type: str
    sessions: int
    receiving_mx_hostname: str = ""
    receiving_ip: str = ""
    sending_mta_ip: str = ""
    failure_reason_code: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result_type": self.result_type, "sessions": self.sessions}
        for key in ("receiving_mx_hostname", "receiving_ip", "sending_mta_ip", "failure_reason_code"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TLSFailure:
        return cls(result_type=str(d.get("result_type") or ""), sessions=int(d.get("sessions") or 0),
                   receiving_mx_hostname=str(d.get("receiving_mx_hostname") or ""),
                   receiving_ip=str(d.get("receiving_ip") or ""),
                   sending_mta_ip=str(d.get("sending_mta_ip") or ""),
                   failure_reason_code=str(d.get("failure_reason_code") or ""))


@dataclass
class TLSPolicy:
    """One policy block of a TLS report (RFC 8460 §4.4): sts, tlsa or no-policy-found."""

    policy_type: str
    policy_domain: str
    successful_sessions: int = 0
    failed_sessions: int = 0
    mx_host: list[str] = field(default_factory=list)
    failures: list[TLSFailure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"policy_type": self.policy_type, "policy_domain": self.policy_domain,
                "successful_sessions": self.successful_sessions, "failed_sessions": self.failed_sessions,
                "mx_host": list(self.mx_host), "failures": [f.to_dict() for f in self.failures]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TLSPolicy:
        return cls(policy_type=str(d.get("policy_type") or ""), policy_domain=str(d.get("policy_domain") or ""),
                   successful_sessions=int(d.get("successful_sessions") or 0),
                   failed_sessions=int(d.get("failed_sessions") or 0),
                   mx_host=[str(x) for x in d.get("mx_host") or []],
                   failures=[TLSFailure.from_dict(x) for x in d.get("failures") or [] if isinstance(x, dict)])


@dataclass
class ParsedReport:
    type: ReportType
    org_name: str = ""
    report_id: str = ""
    domain: str = ""
    begin: datetime | None = None
    end: datetime | None = None
    # -- DMARC aggregate
    messages: int = 0
    dmarc_pass: int = 0
    sources: list[Source] = field(default_factory=list)
    policy: dict[str, str] = field(default_factory=dict)  # policy_published: p, sp, pct, adkim, aspf ...
    rows: int = 0
    truncated: bool = False  # more records than the cap: totals cover the records read
    skipped: int = 0  # records without a source IP: not counted
    # -- TLS-RPT
    policies: list[TLSPolicy] = field(default_factory=list)
    # -- DMARC failure (RFC 6591): only what matters, never addresses, subject or body
    source_ip: str = ""
    auth_failure: str = ""
    failure: dict[str, str] = field(default_factory=dict)

    @property
    def dmarc_fail(self) -> int:
        return self.messages - self.dmarc_pass

    @property
    def successful_sessions(self) -> int:
        return sum(p.successful_sessions for p in self.policies)

    @property
    def failed_sessions(self) -> int:
        return sum(p.failed_sessions for p in self.policies)

    def failure_totals(self) -> list[dict[str, Any]]:
        """Failed sessions per result type, the largest first."""
        totals: dict[str, int] = {}
        for p in self.policies:
            for f in p.failures:
                totals[f.result_type] = totals.get(f.result_type, 0) + f.sessions
        return [{"result_type": k, "sessions": v}
                for k, v in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a report the same report: its type, reporter and id."""
        return (self.type, self.org_name.lower(), self.report_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "org_name": self.org_name, "report_id": self.report_id,
                               "domain": self.domain, "begin": iso(self.begin), "end": iso(self.end)}
        if self.type == "dmarc-aggregate":
            out.update({"messages": self.messages, "dmarc_pass": self.dmarc_pass, "dmarc_fail": self.dmarc_fail,
                        "sources": [s.to_dict() for s in self.sources],
                        "policy": dict(self.policy), "rows": self.rows})
            if self.truncated:
                out["truncated"] = True
            if self.skipped:
                out["skipped_records"] = self.skipped
        elif self.type == "tls-rpt":
            out.update({"successful_sessions": self.successful_sessions, "failed_sessions": self.failed_sessions,
                        "failures": self.failure_totals(), "policies": [p.to_dict() for p in self.policies]})
        else:
            out.update({"source_ip": self.source_ip, "auth_failure": self.auth_failure, **dict(self.failure)})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParsedReport:
        rtype = str(d.get("type") or "")
        if rtype not in REPORT_TYPES:
            raise ValueError(f"not a report type: {rtype!r}")
        out = cls(type=rtype, org_name=str(d.get("org_name") or ""),  # type: ignore[arg-type]
                  report_id=str(d.get("report_id") or ""), domain=str(d.get("domain") or ""),
                  begin=parse_iso(d.get("begin")), end=parse_iso(d.get("end")))
        if rtype == "dmarc-aggregate":
            out.messages = int(d.get("messages") or 0)
            out.dmarc_pass = int(d.get("dmarc_pass") or 0)
            out.sources = [Source.from_dict(s) for s in d.get("sources") or [] if isinstance(s, dict)]
            out.policy = {str(k): str(v) for k, v in (d.get("policy") or {}).items()}
            out.rows = int(d.get("rows") or 0)
            out.truncated = bool(d.get("truncated"))
            out.skipped = int(d.get("skipped_records") or 0)
        elif rtype == "tls-rpt":
            policies = [TLSPolicy.from_dict(p) for p in d.get("policies") or [] if isinstance(p, dict)]
            if not policies:  # SPEC's minimum only: one policy with the totals
                policies = [TLSPolicy(policy_type="", policy_domain=out.domain,
                                      successful_sessions=int(d.get("successful_sessions") or 0),
                                      failed_sessions=int(d.get("failed_sessions") or 0),
                                      failures=[TLSFailure.from_dict(f) for f in d.get("failures") or []
                                                if isinstance(f, dict)])]
            out.policies = policies
        else:
            out.source_ip = str(d.get("source_ip") or "")
            out.auth_failure = str(d.get("auth_failure") or "")
            skip = {"type", "org_name", "report_id", "domain", "begin", "end", "source_ip", "auth_failure"}
            out.failure = {str(k): str(v) for k, v in d.items() if k not in skip and v is not None}
        return out


@dataclass
class ParsedFile:
    """What one file (or pasted blob) gave: its reports, and one line per part that failed."""

    name: str
    reports: list[ParsedReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
