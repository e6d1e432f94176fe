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
from handlers.model import SEVERITY_RANK, Finding, Severity

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
    # The worst severity among the findings a part rests on: a requirement line is as
    # severe as the fact behind it, the same fact says the same thing in every section.
    weight: dict[str, Severity] = field(default_factory=dict)


def _worst(findings: list[Finding]) -> Severity:
    return min((f.severity for f in findings), key=lambda s: SEVERITY_RANK[s], default="warning")


def _state_from(findings: list[Finding], prefix: str, bad: set[str]) -> tuple[State, Severity]:
    mine = [f for f in findings if f.code.startswith(prefix)]
    failing = [f for f in mine if f.code in bad]
    if failing:
        return "unmet", _worst(failing)
    if any(f.severity == "unknown" for f in mine):
        return "unknown", "unknown"
    return "met", "ok"


def summarize(
    findings: list[Finding], *, sending_ips: list[str], ips_source: str, null_mx: bool, dmarc_policy: str | None
) -> Visible:
    v = Visible(sending_ips=sending_ips, ips_source=ips_source, null_mx=null_mx, dmarc_policy=dmarc_policy)
    # `+all` is a valid record that authorises everyone: never "SPF record valid: met"
    # (the audit files it critical; `?all` is a warning and still a record).
    open_door = [f for f in findings if f.code == "spf.permissive_all" and f.severity == "critical"]
    v.spf, v.weight["spf"] = _state_from(
        [f for f in findings if f.code != "spf.permissive_all"] + open_door, "spf.",
        {"spf.missing", "spf.multiple_records", "spf.permerror", "spf.too_many_lookups",
         "spf.too_many_void_lookups", "spf.include_missing", "spf.permissive_all"}
    )
    v.dmarc, v.weight["dmarc"] = _state_from(findings, "dmarc.", {"dmarc.missing", "dmarc.invalid"})
    mx_null = [f for f in findings if f.code == "mx.null"]
    v.weight["null_mx"] = _worst(mx_null) if mx_null else "ok"
    dkim = [f for f in findings if f.code.startswith("dkim.")]
    if any(f.code == "dkim.ok" or (f.code in ("dkim.weak_key", "dkim.testing") and f.severity != "critical")
           for f in dkim):
        v.dkim = "met"
    elif any(f.code in ("dkim.invalid_record", "dkim.weak_key") for f in dkim):
        v.dkim = "unmet"
        v.weight["dkim"] = _worst([f for f in dkim if f.code in ("dkim.invalid_record", "dkim.weak_key")])
    elif any(f.severity == "unknown" for f in dkim):
        v.dkim = "unknown"
    else:
        v.dkim = "not_found"
        v.weight["dkim"] = _worst([f for f in dkim if f.severity != "ok"]) if dkim else "warning"
    ptr = [f for f in findings if f.code.startswith("ptr.")]
    broken = [f for f in ptr if f.code in ("ptr.missing", "ptr.mismatch")]
    if not sending_ips:
        v.ptr = "unknown"
    elif broken:
        v.ptr = "unmet"
        v.weight["ptr"] = _worst(broken)
    elif any(f.severity == "unknown" for f in ptr):
        v.ptr = "unknown"
    else:
        v.ptr = "met"
    generic = [f for f in ptr if f.code == "ptr.generic"]
    v.ptr_generic = bool(generic)
    if generic:
        v.weight["ptr_nongeneric"] = _worst(generic)
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
        failing = [v.weight.get(k, "warning") for k, s in parts.items() if s in ("unmet", "not_found")]
        if failing:
            severity: Severity = min(failing, key=lambda s: SEVERITY_RANK[s])
            if severity in ("ok", "unknown"):
                severity = "info"
            # Neither SPF nor DKIM can be seen passing: receivers that require one of them
            # reject the mail (Gmail 5.7.26), whatever each part weighs alone.
            if parts["spf"] == "unmet" and parts["dkim"] in ("unmet", "not_found"):
                severity = "critical"
        elif unknown:
            severity = "unknown"
        else:
            severity = "ok"
        name = _NAMES[provider]
        if severity == "ok":
            title = f"{domain} meets {name}'s DNS-visible sender requirements"
        elif severity == "info":
            title = f"{domain} nearly meets {name}'s sender requirements"
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
                severity,
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


def parked(domain: str) -> Finding:
    """A domain that sends and receives no mail and says so in DNS (RFC 7505 null MX,
    `v=spf1 -all`, DMARC `p=reject`: the M3AAWG parked-domain set): the sender
    requirements are about mail it never sends."""
    return finding(
        "requirements.not_sending",
        "ok",
        f"{domain} is parked: it sends and receives no mail, so the sender requirements don't apply",
        "Null MX, SPF '-all' and DMARC p=reject together tell every receiver to refuse mail from it and that "
        "it receives none: the set a parked domain should publish. Nothing to fix.",
        evidence={"target": domain},
        check="requirements",
    )
