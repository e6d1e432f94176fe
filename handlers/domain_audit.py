"""The full domain audit: every check, run concurrently on one per-run resolver.

Only true data dependencies are sequential (MX -> A/AAAA -> PTR -> A, SPF
include chains, DMARC -> BIMI's enforcement check); everything else starts at
once, so the wall time is the longest dependency chain, not the sum of queries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from handlers.bimi import audit_bimi
from handlers.dkim import audit_dkim
from handlers.dmarc import audit_dmarc
from handlers.dnssec import audit_dnssec
from handlers.findings import finding
from handlers.model import BlocklistResult, Finding, Report
from handlers.mta_sts import audit_mta_sts
from handlers.mx import MXInfo, audit_mx, mx_details
from handlers.net import Resolver
from handlers.requirements import parked, summarize, verdicts
from handlers.tls_rpt import audit_tls_rpt

# MX addresses whose reverse DNS and blocklist listings one audit checks. Each address
# costs a PTR chain plus one query per blocklist (~50 lists): 20 covers a real
# domain's MX set (5 hosts x IPv4 + IPv6) and keeps a hostile one at ~1,000 rows.
MAX_CHECKED_MX_ADDRESSES = 20


def checked_mx_addresses(info: MXInfo) -> list[str]:
    """The MX addresses to check: the first address of each host in preference order,
    then the second of each, ... up to MAX_CHECKED_MX_ADDRESSES, so every host checked
    gets at least one address checked before any host gets two."""
    every = info.all_addresses
    if len(every) <= MAX_CHECKED_MX_ADDRESSES:
        return every
    per_host = [ips for _host, ips in info.addresses.items()]
    out: list[str] = []
    seen: set[str] = set()
    depth = max((len(ips) for ips in per_host), default=0)
    for i in range(depth):
        for ips in per_host:
            if i < len(ips) and ips[i] not in seen:
                seen.add(ips[i])
                out.append(ips[i])
                if len(out) == MAX_CHECKED_MX_ADDRESSES:
                    return out
    return out


def addresses_truncated(domain: str, checked: int, total: int) -> Finding:
    return finding(
        "audit.truncated",
        "info",
        f"Reverse DNS and blocklists were checked for {checked} of the {total} MX addresses of {domain}",
        f"One audit checks at most {MAX_CHECKED_MX_ADDRESSES} MX addresses (a real domain's MX set fits), so "
        f"the other {total - checked} were not checked. Check one of them with mailcheck ip ADDRESS.",
        evidence={"target": domain, "count": total, "limit": checked},
        remediation=["mx.trim_hosts"],
        check="mx",
    )


async def audit_domain(
    domain: str,
    resolver: Resolver,
    *,
    selectors: list[str] | None = None,
    ips: list[str] | None = None,
    fetch_policies: bool = True,
    blocklists: bool = True,
) -> Report:
    from handlers.blocklists import check_blocklists, prefetch_test_points
    from handlers.ptr import check_ptr
    from handlers.spf.audit import audit_spf

    t0 = time.monotonic()
    report = Report(kind="domain", subject=domain)
    given_ips = list(dict.fromkeys(ips or []))
    bl_results: list[BlocklistResult] = []
    bl_findings: list[Finding] = []

    # Warm the cache for records whose checks wait on another check's result.
    prefetch: list[Awaitable[Any]] = [resolver.txt(f"default._bimi.{domain}"), resolver.txt(f"_mta-sts.{domain}")]
    if blocklists:
        # IPv4 and domain lists' test entries now; IPv6 ones only if an IPv6 target turns up.
        prefetch.append(prefetch_test_points(resolver, ("ip4", "domain")))

    async def ip_checks(targets: list[str], role: str) -> tuple[list[Finding], dict[str, Any]]:
        results = await asyncio.gather(*(check_ptr(resolver, ip, role=role) for ip in targets))
        found: list[Finding] = []
        info: dict[str, Any] = {}
        for ip, (f, d) in zip(targets, results, strict=True):
            found.extend(f)
            info[ip] = d
        return found, info

    async def lists(ip_targets: list[str], domains: list[str], roles: dict[str, str]) -> None:
        if not blocklists or not (ip_targets or domains):
            return
        res, fnd = await check_blocklists(resolver, ip_targets, domains, roles=roles)
        bl_results.extend(res)
        bl_findings.extend(fnd)

    async def mx_chain() -> tuple[list[Finding], MXInfo, list[Finding], dict[str, Any], list[Finding]]:
        mx_f, info = await audit_mx(resolver, domain)
        all_ips = [] if info.null_mx else info.all_addresses
        mx_ips = [] if info.null_mx else checked_mx_addresses(info)
        if len(mx_ips) < len(all_ips):
            mx_f.append(addresses_truncated(domain, len(mx_ips), len(all_ips)))
        ptr_task = ip_checks([ip for ip in mx_ips if ip not in given_ips], "mx")
        lists_task = lists(mx_ips, [], dict.fromkeys(mx_ips, "mx"))
        sts_task = (
            audit_mta_sts(resolver, domain, [h for _p, h in info.hosts], fetch=fetch_policies)
            if not info.null_mx and not info.nxdomain
            else _none_pair()
        )
        tls_task = audit_tls_rpt(resolver, domain) if not info.null_mx and not info.nxdomain else _none_list()
        (ptr_f, ptr_d), _, (sts_f, sts_d), tls_f = await asyncio.gather(ptr_task, lists_task, sts_task, tls_task)
        report.details["mta_sts"] = sts_d
        return mx_f, info, ptr_f, ptr_d, sts_f + tls_f

    async def dmarc_then_bimi() -> tuple[list[Finding], dict[str, Any], list[Finding]]:
        d_f, d_d = await audit_dmarc(resolver, domain)
        tags = d_d.get("tags") or {}
        policy = tags.get("sp" if d_d.get("inherited_from") else "p", tags.get("p"))
        b_f = await audit_bimi(resolver, domain, (policy or "").lower() or None, tags.get("pct"))
        return d_f, d_d, b_f

    # Independent work starts now; the typed gather below waits for the main checks.
    ip_task = asyncio.ensure_future(ip_checks(given_ips, "sending"))
    lists_task = asyncio.ensure_future(
        lists(given_ips, [domain], {**dict.fromkeys(given_ips, "sending"), domain: "domain"})
    )
    prefetched = asyncio.gather(*prefetch)
    (
        (mx_f, mx_info, mxptr_f, mxptr_d, transport_f),
        (spf_f, spf_tree),
        (dmarc_f, dmarc_d, bimi_f),
        (dkim_f, dkim_d),
        dnssec_f,
    ) = await asyncio.gather(
        mx_chain(),
        audit_spf(resolver, domain),
        dmarc_then_bimi(),
        audit_dkim(resolver, domain, selectors),
        audit_dnssec(resolver, domain),
    )
    ipptr_f, ipptr_d = await ip_task
    await lists_task
    await prefetched

    if mx_info.nxdomain:
        # The domain does not exist: that is the one verdict. Its missing SPF, DMARC, DKIM,
        # DNSSEC and the fixes for them would bury it (they all follow from it). IPs the
        # user named are still checked: they exist whatever the domain does.
        report.findings = [*mx_f, *ipptr_f, *(f for f in bl_findings if f.evidence.get("target") != domain)]
        report.blocklists = [r for r in bl_results if r.target != domain]
        report.details["ptr"] = ipptr_d
        report.dns_stats = resolver.stats.as_dict()
        report.duration_ms = int((time.monotonic() - t0) * 1000)
        return report
    tags = dmarc_d.get("tags") or {}
    spf_record = str((spf_tree or {}).get("record") or "") if isinstance(spf_tree, dict) else ""
    if mx_info.null_mx and _is_parked(spf_record, tags.get("p")) and not given_ips:
        # Parked (sends and receives nothing, and says so): no DKIM key is expected and the
        # sender requirements are about mail it never sends.
        dkim_f = [f for f in dkim_f if f.code != "dkim.no_selector_found"]
        for f in dmarc_f:
            if f.code == "dmarc.no_rua":
                f.severity = "info"
        report.findings = [*spf_f, *dkim_f, *dmarc_f, *mx_f, *bimi_f, *dnssec_f, *bl_findings, parked(domain)]
        report.blocklists = bl_results
        report.details.update({"spf": spf_tree, "dmarc": dmarc_d, "dkim": dkim_d, "mx": mx_details(mx_info)})
        report.dns_stats = resolver.stats.as_dict()
        report.duration_ms = int((time.monotonic() - t0) * 1000)
        return report
    if mx_info.null_mx and _authorises_senders(spf_record):
        # A null MX on a domain that does send: Yahoo rejects its mail (550 5.7.27).
        for f in mx_f:
            if f.code == "mx.null":
                f.severity = "critical"
    findings: list[Finding] = [*spf_f, *dkim_f, *dmarc_f, *mx_f, *ipptr_f, *mxptr_f, *transport_f, *bimi_f,
                               *dnssec_f, *bl_findings]
    sending_ips = given_ips or ([] if mx_info.null_mx else checked_mx_addresses(mx_info))
    visible = summarize(
        findings,
        sending_ips=sending_ips,
        ips_source="given with --ip" if given_ips else "the MX hosts' addresses",
        null_mx=mx_info.null_mx,
        dmarc_policy=tags.get("p"),
    )
    findings.extend(verdicts(domain, visible))
    report.findings = findings
    report.blocklists = bl_results
    report.details.update(
        {
            "spf": spf_tree,
            "dmarc": dmarc_d,
            "dkim": dkim_d,
            "mx": mx_details(mx_info),
            "ptr": {**ipptr_d, **mxptr_d},
        }
    )
    report.dns_stats = resolver.stats.as_dict()
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    return report


def _spf_terms(record: str) -> list[str]:
    return record.lower().split()[1:] if record.lower().startswith("v=spf1") else []


def _is_parked(spf_record: str, dmarc_policy: object) -> bool:
    """Null MX (checked by the caller), SPF that authorises no one, DMARC p=reject."""
    return _spf_terms(spf_record) == ["-all"] and str(dmarc_policy or "").lower() == "reject"


def _authorises_senders(spf_record: str) -> bool:
    terms = _spf_terms(spf_record)
    return bool(terms) and terms not in (["-all"], ["~all"])


async def _none_pair() -> tuple[list[Finding], dict[str, Any]]:
    return [], {}


async def _none_list() -> list[Finding]:
    return []
