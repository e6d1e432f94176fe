"""The case's own values in the fix texts.

Remediation texts in `knowledge/remediation/` are written with documentation values
(RFC 2606 `example.com`, JPRS's `example.jp`, RFC 5737 `192.0.2.10`, RFC 3849 `2001:db8::10`, the selector
`s2026`) so that they read well on their own. When they are shown for a case, the reader
should be able to copy a line as it stands: the domain that was audited, the IP that was
checked, the selector that was found. This module swaps them in, at render time, in every
language; texts about third parties (`_spf.example.net`, "an IP that is not yours",
203.0.113.99) keep their placeholders.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from handlers.model import Report

# `example.com` as a whole name or as the parent of one (`_dmarc.example.com`,
# `mail.example.com.`), never inside another name (`myexample.com`, `example.com.au`).
_DOMAIN = re.compile(r"(?<![\w-])example\.(?:com|jp)(?![\w-]|\.[a-z])", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])192\.0\.2\.10(?![\d.]|/\d)")
_REVERSE4 = re.compile(r"(?<![\w.])10\.2\.0\.192\.in-addr\.arpa", re.IGNORECASE)
_IPV6 = re.compile(r"(?:(?<=ip6:)|(?<![\w:]))2001:db8::10(?![\w:]|/\d)", re.IGNORECASE)
_SELECTOR = re.compile(r"(?<![\w-])s2026(?=\._domainkey|\b)")


@dataclass(frozen=True)
class CaseValues:
    domain: str = ""
    ipv4: str = ""
    ipv6: str = ""
    selector: str = ""

    def fill(self, text: str) -> str:
        if not text:
            return text
        if self.domain:
            text = _DOMAIN.sub(self.domain, text)
        if self.ipv4:
            text = _IPV4.sub(self.ipv4, text)
            reverse = ".".join(reversed(self.ipv4.split("."))) + ".in-addr.arpa"
            text = _REVERSE4.sub(reverse, text)
        if self.ipv6:
            text = _IPV6.sub(self.ipv6, text)
        if self.selector:
            text = _SELECTOR.sub(self.selector, text)
        return text


def _ip_kind(value: str) -> int:
    try:
        return ipaddress.ip_address(value.strip("[]")).version
    except ValueError:
        return 0


def _plain_domain(value: str) -> str:
    value = value.strip().rstrip(".").lower()
    return value if "." in value and re.fullmatch(r"[a-z0-9._-]+", value) else ""


def values_for(report: Report) -> CaseValues:
    """What a report knows of its own case: the domain, the IPs and the DKIM selector."""
    words = report.subject.split()
    domain = ""
    ips: list[str] = []
    if report.kind == "domain" and words:
        domain = _plain_domain(words[0])
    elif report.kind == "spf" and words:
        domain = _plain_domain(words[0])
        ips = words[1:2]
    elif report.kind == "ip":
        ips = words
    for f in report.findings:
        # A bounce names the recipient's domain and ours: its texts keep their placeholders.
        if not domain and report.kind == "message":
            domain = _plain_domain(str(f.evidence.get("from_domain") or ""))
        if not ips and f.code == "message.path" and f.evidence.get("ip"):
            ips = [str(f.evidence["ip"])]
    ptr = report.details.get("ptr")
    if not ips and isinstance(ptr, dict):
        # The IPs the user named (--ip): the audit's MX addresses are not its sending IPs.
        ips = [str(ip) for ip, row in ptr.items() if isinstance(row, dict) and row.get("role") == "sending"]
    v4 = next((ip for ip in ips if _ip_kind(ip) == 4), "")
    v6 = next((ip for ip in ips if _ip_kind(ip) == 6), "")
    selector = ""
    dkim = report.details.get("dkim")
    rows = (dkim.get("keys") if isinstance(dkim, dict) else None) or report.details.get("dkim_selectors") or []
    for row in rows:
        if isinstance(row, dict) and row.get("selector") and not row.get("revoked"):
            selector = str(row["selector"])
            break
    return CaseValues(domain=domain, ipv4=v4, ipv6=v6, selector=selector)
