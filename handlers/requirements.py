"""Gmail / Yahoo / Microsoft sender-requirement verdicts from what DNS shows.

Judged against each provider's bulk-sender rules (the strictest tier), because
a small sender crosses 5,000 messages a day sooner than expected and the rules
then apply permanently (Gmail FAQ). Spam rate and one-click unsubscribe can't
be seen from DNS: they are listed as "not visible" and don't block `ok`.
Sources: knowledge_facts A1 (Gmail 81126 / 14229414), A2 (Microsoft 5.7.515,
May 2025), A3 (Yahoo best practices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from handlers.findings import finding
from handlers.model import Finding

State = Literal["met", "unmet", "unknown", "not_found"]


@dataclass
class Visible:
    """What the audit saw, reduced to the parts the requirements name."""

    spf: State = "unknown"
    dkim: State = "unknown"  # not_found: discovery found no key (can't prove absence)
    dmarc: State = "unknown"
    dmarc_policy: str | None = None
    ptr: State = "unknown"  # every sending IP has a PTR that resolves back
    ptr_generic: bool = False  # some sending IP has a generic-looking PTR
    null_mx: bool = False
    sending_ips: list[str] = field(default_factory=list)
    ips_source: str = "MX hosts"


def _state_from(findings: list[Finding], prefix: str, bad: set[str]) -> State:
    mine = [f for f in findings if f.code.startswith(prefix)]
    if any(f.code in bad for f in mine):
        return "unmet"
    if any(f.severity == "unknown" for f in mine):
        return "unknown"
    return "met"


def summarize(
    findings: list[Finding], *, sending_ips: list[str], ips_source: str, null_mx: bool, dmarc_policy: str | None
) -> Visible:
    v = Visible(sending_ips=sending_ips, ips_source=ips_source, null_mx=null_mx, dmarc_policy=dmarc_policy)
    v.spf = _state_from(
        findings, "spf.", {"spf.missing", "spf.multiple_records", "spf.permerror", "spf.too_many_lookups",
                           "spf.too_many_void_lookups", "spf.include_missing"}
    )
    v.dmarc = _state_from(findings, "dmarc.", {"dmarc.missing", "dmarc.invalid"})
    dkim = [f for f in findings if f.code.startswith("dkim.")]
    if any(f.code == "dkim.ok" or (f.code in ("dkim.weak_key", "dkim.testing") and f.severity != "critical")
           for f in dkim):
        v.dkim = "met"
    elif any(f.code in ("dkim.invalid_record", "dkim.weak_key") for f in dkim):
        v.dkim = "unmet"
    elif any(f.severity == "unknown" for f in dkim):
        v.dkim = "unknown"
    else:
        v.dkim = "not_found"
    ptr = [f for f in findings if f.code.startswith("ptr.")]
    if not sending_ips:
        v.ptr = "unknown"
    elif any(f.code in ("ptr.missing", "ptr.mismatch") for f in ptr):
        v.ptr = "unmet"
    elif any(f.severity == "unknown" for f in ptr):
        v.ptr = "unknown"
    else:
        v.ptr = "met"
    v.ptr_generic = any(f.code == "ptr.generic" for f in ptr)
    return v


_PARTS = {
    "spf": "SPF record valid",
    "dkim": "DKIM key published (1024 bits or more)",
    "dmarc": "DMARC record published (p=none is enough)",
    "ptr": "sending IPs have PTR records that resolve back (FCrDNS)",
    "ptr_nongeneric": "sending IPs have non-generic PTR names",
    "null_mx": "From domain has no null MX",
}
_NOT_VISIBLE = {
    "google": ["spam rate below 0.3% (Postmaster Tools)", "one-click unsubscribe on marketing mail", "TLS",
               "From aligned with SPF or DKIM"],
    "yahoo": ["spam rate below 0.3%", "one-click unsubscribe on bulk mail", "DMARC passes with alignment"],
    "microsoft": ["SPF and DKIM actually pass on sent mail", "DMARC passes with alignment",
                  "working unsubscribe links and list hygiene"],
}
# Yahoo Inc. (yahoo.com, aol.com), not Yahoo! JAPAN (yahoo.co.jp): another company with other rules.
_NAMES = {"google": "Gmail", "yahoo": "Yahoo Inc. (yahoo.com, aol.com)", "microsoft": "Outlook.com (Microsoft)"}
_CODES = {"google": "requirements.gmail", "yahoo": "requirements.yahoo", "microsoft": "requirements.microsoft"}


def verdicts(domain: str, v: Visible) -> list[Finding]:
    out: list[Finding] = []
    for provider in ("google", "yahoo", "microsoft"):
        parts: dict[str, State] = {"spf": v.spf, "dkim": v.dkim, "dmarc": v.dmarc, "ptr": v.ptr}
        if provider == "yahoo":
            parts["ptr_nongeneric"] = "unmet" if v.ptr_generic else ("met" if v.ptr == "met" else v.ptr)
            parts["null_mx"] = "unmet" if v.null_mx else "met"
        met = [_PARTS[k] for k, s in parts.items() if s == "met"]
        unmet = [_PARTS[k] for k, s in parts.items() if s == "unmet"]
        not_found = [_PARTS[k] for k, s in parts.items() if s == "not_found"]
        unknown = [_PARTS[k] for k, s in parts.items() if s == "unknown"]
        hard_fail = any(parts[k] == "unmet" for k in parts if k != "dkim") or (
            parts["spf"] != "met" and parts["dkim"] not in ("met", "unknown")
        )
        if hard_fail:
            severity = "critical"
        elif unmet or not_found:
            severity = "warning"
        elif unknown:
            severity = "unknown"
        else:
            severity = "ok"
        name = _NAMES[provider]
        if severity == "ok":
            title = f"{domain} meets {name}'s DNS-visible sender requirements"
        elif severity == "unknown":
            title = f"Could not fully judge {domain} against {name}'s sender requirements"
        else:
            title = f"{domain} does not meet {name}'s sender requirements"
        lines = []
        if unmet:
            lines.append("Not met: " + "; ".join(unmet) + ".")
        if not_found:
            lines.append("Not found (pass --selector to check): " + "; ".join(not_found) + ".")
        if unknown:
            lines.append("Could not check: " + "; ".join(unknown) + ".")
        if met:
            lines.append("Met: " + "; ".join(met) + ".")
        lines.append("Not visible from DNS: " + "; ".join(_NOT_VISIBLE[provider]) + ".")
        if v.sending_ips:
            lines.append(f"Sending IPs judged ({v.ips_source}): {', '.join(v.sending_ips)}.")
        out.append(
            finding(
                _CODES[provider],
                severity,  # type: ignore[arg-type]
                title,
                " ".join(lines),
                evidence={
                    "target": domain,
                    "met": met,
                    "unmet": unmet,
                    "not_found": not_found,
                    "unknown": unknown,
                    "not_visible": _NOT_VISIBLE[provider],
                    "sending_ips": v.sending_ips,
                },
                remediation=[_CODES[provider]],
                check="requirements",
            )
        )
    return out
