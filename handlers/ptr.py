"""Reverse DNS of an IP: PTR present, forward-confirmed (FCrDNS), not generic.

`check_ptr` is used by `mailcheck ip` and by the domain audit (every MX
address and every --ip). Codes: ptr.missing / ptr.mismatch / ptr.generic /
ptr.ok / ptr.unknown (check="ptr"). Gmail rejects mail from IPs without a PTR
or whose PTR name does not resolve back to the IP (550 5.7.25); Yahoo asks for
a non-generic PTR. A receiving-only MX needs none of this, so role "mx" softens
severities.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from functools import cache
from typing import Any

from handlers.model import Finding, Severity, format_ip
from handlers.net import DNSResult, Outcome, Resolver
from knowledge.blocklists import load_ptr_patterns

CHECK = "ptr"
MAX_NAMES = 5  # forward-check at most this many PTR names

_SEVERITY: dict[str, dict[str, Severity]] = {
    "missing": {"sending": "critical", "mx": "warning"},
    "mismatch": {"sending": "critical", "mx": "warning"},
    "generic": {"sending": "warning", "mx": "info"},
}
_SHORT_SLD = re.compile(r"^[a-z]{2,3}$")


def _severity(kind: str, role: str) -> Severity:
    table = _SEVERITY[kind]
    return table.get(role, table["sending"])


@cache
def _compiled() -> tuple[frozenset[str], tuple[tuple[re.Pattern[str], str], ...], dict[str, str], bool]:
    p = load_ptr_patterns()
    words = {k.word: k.why for k in p.keywords}
    regs = tuple((re.compile(r.pattern), r.why) for r in p.regexes)
    return frozenset(words), regs, words, p.embedded_ip


def _host_part(name: str) -> list[str]:
    """Labels of `name` without its (approximate) organisational domain."""
    labels = name.lower().rstrip(".").split(".")
    keep = 2
    if len(labels) >= 3 and len(labels[-1]) == 2 and _SHORT_SLD.match(labels[-2]) and labels[-2] in {
        "co", "ne", "or", "ac", "ad", "go", "gr", "ed", "lg", "com", "net", "org", "edu", "gov",
    }:  # fmt: skip
        keep = 3
    return labels[:-keep] if len(labels) > keep else []


def _embeds_ip(name: str, ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    low = name.lower()
    if addr.version == 4:
        octets = [int(o) for o in ip.split(".")]
        runs = [int(r) for r in re.findall(r"\d+", low) if len(r) <= 3]
        for seq in (octets, octets[::-1]):
            for i in range(len(runs) - 3):
                if runs[i : i + 4] == seq:
                    return True
        if "".join(f"{o:03d}" for o in octets) in low or "".join(f"{o:03d}" for o in octets[::-1]) in low:
            return True
        hexed = "".join(f"{o:02x}" for o in octets)
        return bool(re.search(rf"(^|[^0-9a-f]){hexed}([^0-9a-f]|$)", low))
    flat = addr.exploded.replace(":", "")
    squeezed = re.sub(r"[^0-9a-f]", "", low)
    return flat in squeezed or addr.compressed.replace(":", "-") in low


def generic_reason(name: str, ip: str) -> str:
    """Why `name` looks like a generic / dynamic PTR for `ip` ('' = it does not)."""
    words, regs, why, embedded = _compiled()
    low = name.lower().rstrip(".")
    for rx, reason in regs:
        if rx.search(low):
            return reason
    if embedded and _embeds_ip(low, ip):
        return "the IP address is embedded in the name"
    for label in _host_part(low):
        for token in re.split(r"[-_]", label):
            core = token.strip("0123456789")
            if core in words:
                return why[core]
    return ""


async def check_ptr(
    resolver: Resolver, ip: str, role: str = "sending"
) -> tuple[list[Finding], dict[str, Any]]:
    """PTR, FCrDNS and generic-name checks for one IP; every finding names the IP."""
    shown = format_ip(ip)
    addr = ipaddress.ip_address(shown)
    info: dict[str, Any] = {
        "ip": shown, "role": role, "status": "unknown", "ptr": [], "forward": {},
        "fcrdns": None, "generic": False, "generic_reason": "",
    }  # fmt: skip
    ev: dict[str, Any] = {"target": shown, "ip": shown, "role": role}
    findings: list[Finding] = []
    res = await resolver.ptr(shown)
    if res.outcome in (Outcome.NXDOMAIN, Outcome.NODATA) or (res.ok and not res.targets):
        info["status"] = "missing"
        findings.append(
            Finding(
                code="ptr.missing",
                severity=_severity("missing", role),
                title=f"{shown} has no reverse DNS (PTR) record",
                detail=(
                    "Receivers such as Gmail reject or throttle mail from IPs without a PTR record "
                    "(550 5.7.25). Ask whoever controls the IP (hosting provider / ISP) to set a PTR to "
                    "the server's host name, and make that name resolve back to the IP."
                    if role != "mx"
                    else "This MX address has no PTR. Receiving works without one, but if this host also "
                    "sends mail, receivers will reject or throttle it."
                ),
                evidence={**ev, "ptr": None},
                remediation=["ptr.set_reverse_dns"],
                check=CHECK,
            )
        )
        return findings, info
    if not res.ok:
        info["status"] = "unknown"
        findings.append(_unknown(shown, ev, f"the PTR lookup failed: {res.describe()}"))
        return findings, info

    published = sorted(dict.fromkeys(res.targets))
    # A hostile reverse zone can publish thousands of PTR names for one IP: keep (and
    # quote) the first MAX_NAMES, and say how many there were.
    names = published[:MAX_NAMES]
    info["ptr"] = names
    if len(published) > MAX_NAMES:
        info["ptr_published"] = len(published)
    rdtype = "A" if addr.version == 4 else "AAAA"
    fwd: list[DNSResult] = list(await asyncio.gather(*(resolver.query(n, rdtype) for n in names[:MAX_NAMES])))
    matched: list[str] = []
    failed: list[str] = []
    for name, r in zip(names, fwd, strict=False):
        addrs = [format_ip(a) for a in r.addresses]
        info["forward"][name] = addrs if r.definitive else None
        if not r.definitive:
            failed.append(f"{name}: {r.describe()}")
        if shown in addrs:
            matched.append(name)
    more = f" and {len(published) - len(names)} more" if len(published) > len(names) else ""
    multiple = (
        f" The IP has {len(published)} PTR records ({', '.join(names)}{more}); one is better: some receivers pick "
        "one at random."
        if len(published) > 1
        else ""
    )
    ptr_ev = {**ev, "ptr": names[0] if len(names) == 1 else names}
    if matched:
        info["fcrdns"] = True
    elif failed:
        info["fcrdns"] = None
        info["status"] = "unknown"
        findings.append(
            _unknown(shown, ptr_ev, "forward lookup of the PTR name failed: " + "; ".join(failed))
        )
    else:
        info["fcrdns"] = False
        info["status"] = "mismatch"
        shown_fwd = "; ".join(
            f"{n} -> {', '.join(a or []) or 'no ' + rdtype}" for n, a in info["forward"].items()
        )
        findings.append(
            Finding(
                code="ptr.mismatch",
                severity=_severity("mismatch", role),
                title=f"{shown}: PTR {names[0]} does not resolve back to {shown} (no FCrDNS)",
                detail=(
                    f"Forward-confirmed reverse DNS fails: {shown_fwd}. Gmail and others require the PTR "
                    f"name's {rdtype} record to contain the sending IP. Add {rdtype} {shown} to the PTR name "
                    "or change the PTR to a name that has it." + multiple
                ),
                evidence={**ptr_ev, "forward": info["forward"]},
                remediation=["ptr.fcrdns_match"],
                check=CHECK,
            )
        )
    checked = matched[0] if matched else names[0]
    reason = generic_reason(checked, shown)
    if reason:
        info["generic"] = True
        info["generic_reason"] = reason
        findings.append(
            Finding(
                code="ptr.generic",
                severity=_severity("generic", role),
                title=f"{shown}: PTR {checked} looks generic or dynamic",
                detail=(
                    f"{reason}. Receivers (Yahoo, SpamRATS Dyna, Spamhaus PBL heuristics) treat such names as "
                    "end-user or default provider space. Use a PTR that names the mail server in your own "
                    "domain, e.g. mail.example.com, with a matching forward record." + multiple
                ),
                evidence={**ptr_ev, "ptr": checked, "why": reason},
                remediation=["ptr.non_generic_name"],
                check=CHECK,
            )
        )
    if matched:
        info["status"] = "generic" if reason else "ok"
        if not reason:
            findings.append(
                Finding(
                    code="ptr.ok",
                    severity="ok",
                    title=f"{shown}: PTR {checked} resolves back to the IP (FCrDNS ok)",
                    detail=multiple.strip(),
                    evidence={**ptr_ev, "ptr": checked},
                    check=CHECK,
                )
            )
    elif info["status"] != "unknown" and reason:
        info["status"] = "mismatch"
    return findings, info


def _unknown(shown: str, ev: dict[str, Any], why: str) -> Finding:
    return Finding(
        code="ptr.unknown",
        severity="unknown",
        title=f"{shown}: reverse DNS could not be checked",
        detail=why,
        evidence={**ev, "error": why},
        check=CHECK,
    )
