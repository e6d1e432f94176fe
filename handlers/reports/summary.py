"""From parsed receiver reports to findings: what passes, who fails and why, what is
new since the last summary, what p=reject would do, and TLS failures with the fix.

Each distinct source IP is looked up once (PTR through the run's resolver, its
budget and cache; the sending service from the PTR name's suffix). A lookup that got
no answer leaves the PTR empty: nothing is concluded from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers.model import Finding, Report, Severity
from handlers.reports.records import ParsedReport, Source, iso

if TYPE_CHECKING:
    from handlers.dns import Resolver

CHECK = "reports"
MAX_BLOCKLIST_IPS = 10  # the largest sources are looked up on the blocklists (~50 lists each)
MAX_ENRICH = 300  # distinct source IPs looked up (the largest first); the rest stay unnamed
ENRICH_CONCURRENCY = 16
MAX_SOURCE_FINDINGS = 10  # failing / new sources named one by one; the rest are counted
MAX_LISTED = 10  # IPs quoted in one finding
PASS_OK, PASS_INFO = 0.98, 0.90


def _finding(code: str, severity: Severity, evidence: dict[str, Any],
             remediation: list[str] | None = None) -> Finding:
    import knowledge

    title, detail = knowledge.localize_finding(code, "en", evidence, code, "")
    return Finding(code=code, severity=severity, title=title, detail=detail, evidence=evidence,
                   remediation=list(remediation if remediation is not None else
                                    (getattr(knowledge.finding_text(code, "en"), "remediation", None) or [])),
                   check=CHECK)


def _text(key: str, lang: str, **params: Any) -> str:
    from knowledge.report_texts import report_text

    return report_text(key, lang, **params)


def _public(ip: str) -> bool:
    """Worth a PTR question: not loopback, RFC 1918, CGNAT, link-local or ULA (SPEC: only
    those are internal; documentation ranges are ordinary addresses for DNS questions)."""
    from handlers.safety import is_internal_hop

    return not is_internal_hop(ip)


async def enrich(reports: Iterable[ParsedReport], resolver: Resolver | None) -> dict[str, tuple[str | None, str | None]]:
    """PTR name and sending service of every distinct source IP (one lookup each), set on
    the sources in place; returns {ip: (ptr, provider)}."""
    from knowledge.report_texts import service_for_ptr

    volume: dict[str, int] = {}
    for r in reports:
        for s in r.sources:
            volume[s.ip] = volume.get(s.ip, 0) + s.messages
        if r.source_ip:
            volume.setdefault(r.source_ip, 0)
    ips = [ip for ip in sorted(volume, key=lambda i: (-volume[i], i)) if _public(ip)][:MAX_ENRICH]
    names: dict[str, tuple[str | None, str | None]] = {}
    if resolver is not None and ips:
        resolver.ensure_budget(len(ips) + 50)
        gate = asyncio.Semaphore(ENRICH_CONCURRENCY)

        async def one(ip: str) -> None:
            async with gate:
                res = await resolver.ptr(ip)
            targets = res.targets if res.ok else []
            ptr = targets[0].rstrip(".").lower() if targets else None
            names[ip] = (ptr, service_for_ptr(ptr) if ptr else None)

        await asyncio.gather(*(one(ip) for ip in ips))
    for r in reports:
        for s in r.sources:
            if s.ip in names:
                s.ptr, s.provider = names[s.ip]
    return names


@dataclass
class _Merged:
    """One source IP across every report of one domain."""

    ip: str
    messages: int = 0
    failed: int = 0
    spf_aligned: int = 0
    dkim_aligned: int = 0
    ptr: str | None = None
    provider: str | None = None
    header_from: list[str] = field(default_factory=list)
    spf: dict[tuple[str, str], int] = field(default_factory=dict)  # (domain, result) -> messages
    dkim: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (domain, selector, result)
    reasons: list[str] = field(default_factory=list)
    listed_on: list[str] = field(default_factory=list)

    def add(self, s: Source) -> None:
        self.messages += s.messages
        self.failed += s.fail_messages
        self.spf_aligned += s.spf_aligned_messages
        self.dkim_aligned += s.dkim_aligned_messages
        self.ptr = self.ptr or s.ptr
        self.provider = self.provider or s.provider
        for h in s.header_from:
            if h not in self.header_from:
                self.header_from.append(h)
        for a in s.spf:
            self.spf[(a.domain, a.result)] = self.spf.get((a.domain, a.result), 0) + a.messages
        for a in s.dkim:
            k = (a.domain, a.selector, a.result)
            self.dkim[k] = self.dkim.get(k, 0) + a.messages
        for reason in s.reasons:
            if reason not in self.reasons:
                self.reasons.append(reason)
        for zone in s.blocklists or []:
            if zone not in self.listed_on:
                self.listed_on.append(zone)


def _why(m: _Merged, domain: str, lang: str) -> list[str]:
    """Which of SPF and DKIM failed for this source, and why, in `lang`."""
    header = m.header_from[0] if m.header_from else domain
    out: list[str] = []
    if m.spf_aligned < m.messages:
        if not m.spf:
            out.append(_text("spf_none", lang))
        for (d, result), _n in sorted(m.spf.items(), key=lambda kv: -kv[1])[:3]:
            if result == "pass":
                out.append(_text("spf_not_aligned", lang, domain=d or "?", header_from=header))
            else:
                out.append(_text("spf_failed", lang, domain=d or "?", result=result))
    if m.dkim_aligned < m.messages:
        if not m.dkim:
            out.append(_text("dkim_none", lang))
        for (d, sel, result), _n in sorted(m.dkim.items(), key=lambda kv: -kv[1])[:3]:
            if result == "pass":
                out.append(_text("dkim_not_aligned", lang, domain=d or "?", selector=sel or "?",
                                 header_from=header))
            else:
                out.append(_text("dkim_failed", lang, domain=d or "?", selector=sel or "?", result=result))
    for reason in m.reasons[:3]:
        out.append(_text("override", lang, reason=reason))
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _period(reports: list[ParsedReport]) -> str:
    begins = [r.begin for r in reports if r.begin]
    ends = [r.end for r in reports if r.end]
    if not begins or not ends:
        return ""
    return f"{(iso(min(begins)) or '')[:10]} – {(iso(max(ends)) or '')[:10]}"


def _source_evidence(m: _Merged, domain: str) -> dict[str, Any]:
    ev: dict[str, Any] = {"target": domain, "ip": m.ip, "count": m.failed, "messages": m.messages,
                          "why": "; ".join(_why(m, domain, "en")), "why_ja": "、".join(_why(m, domain, "ja"))}
    if m.ptr:
        ev["ptr"] = m.ptr
    if m.provider:
        ev["provider"] = m.provider
    if m.listed_on:
        ev["zone"] = sorted(m.listed_on)
    return ev


def _aggregate_findings(domain: str, reports: list[ParsedReport], previous: list[ParsedReport] | None,
                        report: Report) -> None:
    messages = sum(r.messages for r in reports)
    passed = sum(r.dmarc_pass for r in reports)
    merged: dict[str, _Merged] = {}
    for r in reports:
        for s in r.sources:
            merged.setdefault(s.ip, _Merged(s.ip)).add(s)
    failing = sorted((m for m in merged.values() if m.failed), key=lambda m: (-m.failed, m.ip))
    rate = passed / messages if messages else 1.0
    severity: Severity = "ok" if rate >= PASS_OK else "info" if rate >= PASS_INFO else "warning"
    reporters = sorted({r.org_name for r in reports if r.org_name})
    latest = max(reports, key=lambda r: (r.end or r.begin or report.checked_at).timestamp())
    policy = latest.policy.get("p", "").lower()
    evidence: dict[str, Any] = {
        "target": domain, "rate": _pct(passed, messages), "messages": messages, "count": messages - passed,
        "period": _period(reports), "reporters": reporters, "policy": policy or None,
        "sources": len(merged), "pass_ratio": round(rate, 4),
    }
    before_agg = [p for p in previous or [] if p.type == "dmarc-aggregate" and p.domain == domain]
    before_messages = sum(p.messages for p in before_agg)
    if before_messages:
        # What the last summary saw: a digest leads with the change.
        evidence["previous_ratio"] = round(sum(p.dmarc_pass for p in before_agg) / before_messages, 4)
    report.add(_finding("reports.pass_rate", severity, evidence))
    for m in failing[:MAX_SOURCE_FINDINGS]:
        sev: Severity = "warning" if m.failed * 20 >= messages or m.provider else "info"
        report.add(_finding("reports.failing_source", sev, _source_evidence(m, domain)))
    if len(failing) > MAX_SOURCE_FINDINGS:
        rest = failing[MAX_SOURCE_FINDINGS:]
        report.add(_finding("reports.more_failing_sources", "info", {
            "target": domain, "count": len(rest), "messages": sum(m.failed for m in rest)}))
    if failing and policy != "reject":
        report.add(_finding("reports.what_if_reject", "info", {
            "target": domain, "policy": policy or None, "count": sum(m.failed for m in failing),
            "messages": messages, "sources": [m.ip for m in failing[:MAX_LISTED]],
            "value": len(failing),
        }))
    if previous is not None:
        before = [p for p in previous if p.type == "dmarc-aggregate" and p.domain == domain]
        if before:
            known = {s.ip for p in before for s in p.sources}
            new = sorted((m for m in merged.values() if m.ip not in known), key=lambda m: (-m.messages, m.ip))
            for m in new[:MAX_SOURCE_FINDINGS]:
                ev = _source_evidence(m, domain)
                ev["count"] = m.messages
                ev["failed"] = m.failed
                report.add(_finding("reports.new_source", "warning" if m.failed else "info", ev))
            if len(new) > MAX_SOURCE_FINDINGS:
                report.add(_finding("reports.more_new_sources", "info", {
                    "target": domain, "count": len(new) - MAX_SOURCE_FINDINGS}))
            gone = sorted({p.org_name for p in before if p.org_name} - set(reporters))
            if gone:
                report.add(_finding("reports.reporter_stopped", "info", {"target": domain, "reporters": gone,
                                                                           "count": len(gone)}))
    selectors = sorted({f"{sel} ({d})" for m in merged.values() for (d, sel, _r) in m.dkim if sel})
    if selectors:
        report.add(_finding("reports.dkim_selectors", "info", {"target": domain, "selectors": selectors,
                                                               "count": len(selectors)}))
        report.details.setdefault("selectors", {})[domain] = sorted(
            {sel for m in merged.values() for (d, sel, _r) in m.dkim
             if sel and (d == domain or d.endswith("." + domain) or domain.endswith("." + d))})


def tls_remediation(result_type: str) -> list[str]:
    import knowledge

    rid = f"reports.tls_{result_type.replace('-', '_')}"
    return [rid] if knowledge.find_remediation(rid) is not None else ["reports.tls_other"]


def _tls_findings(reports: list[ParsedReport], report: Report) -> None:
    by_policy: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reports:
        for p in r.policies:
            key = (p.policy_domain or r.domain, p.policy_type)
            entry = by_policy.setdefault(key, {"ok": 0, "failed": 0, "types": {}, "hosts": {},
                                               "reporters": set()})
            entry["ok"] += p.successful_sessions
            entry["failed"] += p.failed_sessions
            entry["reporters"].add(r.org_name)
            for f in p.failures:
                entry["types"][f.result_type] = entry["types"].get(f.result_type, 0) + f.sessions
                if f.receiving_mx_hostname:
                    entry["hosts"].setdefault(f.result_type, set()).add(f.receiving_mx_hostname)
    for (domain, ptype), e in sorted(by_policy.items()):
        total = e["ok"] + e["failed"]
        if not e["failed"]:
            report.add(_finding("reports.tls_ok", "ok", {"target": domain, "policy": ptype, "count": total}))
            continue
        types = e["types"] or {"unspecified": e["failed"]}
        for rtype, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0])):
            hosts = sorted(e["hosts"].get(rtype, set()))[:MAX_LISTED]
            report.add(_finding("reports.tls_failure", "warning", {
                "target": domain, "policy": ptype, "result_type": rtype, "count": n, "sessions": total,
                "rate": _pct(n, total), "host": hosts or None}, tls_remediation(rtype)))


def _failure_findings(reports: list[ParsedReport], report: Report) -> None:
    groups: dict[tuple[str, str, str], list[ParsedReport]] = {}
    for r in reports:
        groups.setdefault((r.domain, r.source_ip, r.auth_failure), []).append(r)
    for (domain, ip, failure), items in sorted(groups.items()):
        first = items[0]
        ev: dict[str, Any] = {"target": domain or None, "ip": ip or None, "value": failure or None,
                              "count": len(items)}
        if first.failure.get("dkim_selector"):
            ev["selector"] = first.failure["dkim_selector"]
        names = [s for s in (first.failure.get("dkim_domain"), first.failure.get("spf_dns")) if s]
        if names:
            ev["host"] = names
        report.add(_finding("reports.failure_report", "info", ev))


def _dedupe(reports: Iterable[ParsedReport]) -> list[ParsedReport]:
    seen: set[tuple[str, str, str]] = set()
    out: list[ParsedReport] = []
    for r in reports:
        if r.report_id:
            if r.key in seen:
                continue
            seen.add(r.key)
        out.append(r)
    return out


async def _blocklist_state(reports: list[ParsedReport], resolver: Resolver, report: Report) -> None:
    """The largest sources on the blocklists (the existing engine): a listing of an
    address that sends your mail is what hurts delivery; the rows go to the report."""
    from handlers.blocklists import check_blocklists

    volume: dict[str, int] = {}
    for r in reports:
        for s in r.sources:
            volume[s.ip] = volume.get(s.ip, 0) + s.messages
    ips = [ip for ip in sorted(volume, key=lambda i: (-volume[i], i)) if _public(ip)][:MAX_BLOCKLIST_IPS]
    if not ips:
        return
    rows, findings = await check_blocklists(resolver, ips, [], roles={ip: "sending" for ip in ips})
    listed: dict[str, list[str]] = {ip: [] for ip in ips}
    for row in rows:
        if row.status == "listed" and row.target in listed:
            listed[row.target].append(row.zone)
    for r in reports:
        for s in r.sources:
            if s.ip in listed:
                s.blocklists = sorted(listed[s.ip])
    report.blocklists = rows
    report.findings.extend(f for f in findings if f.code == "blocklist.listed")


async def summarize(reports: list[ParsedReport], resolver: Resolver | None, *,
                    previous: list[ParsedReport] | None = None, blocklists: bool = True) -> Report:
    """A "reports" Report: findings per policy domain, the reports themselves (enriched:
    PTR and provider on every source) in `details["reports"]`, DKIM selectors seen per
    domain in `details["selectors"]`. `previous` is what the last summary covered: with
    it, new sources and reporters that stopped reporting are named; without, a first run
    says neither. With `blocklists`, the largest sources are also looked up on the
    blocklists (their listed zones in each source's `blocklists`)."""
    t0 = time.monotonic()
    reports = _dedupe(reports)
    domains = sorted({r.domain for r in reports if r.domain})
    report = Report(kind="reports", subject=", ".join(domains[:5]) + (" …" if len(domains) > 5 else "")
                    or "receiver reports")
    await enrich(reports, resolver)
    if resolver is not None and blocklists:
        await _blocklist_state([r for r in reports if r.type == "dmarc-aggregate"], resolver, report)
    aggregate: dict[str, list[ParsedReport]] = {}
    for r in reports:
        if r.type == "dmarc-aggregate":
            aggregate.setdefault(r.domain, []).append(r)
    for domain in sorted(aggregate):
        _aggregate_findings(domain, aggregate[domain], previous, report)
    _tls_findings([r for r in reports if r.type == "tls-rpt"], report)
    _failure_findings([r for r in reports if r.type == "dmarc-failure"], report)
    report.details["reports"] = [r.to_dict() for r in reports]
    if resolver is not None:
        report.dns_stats = resolver.stats.as_dict()
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    return report
