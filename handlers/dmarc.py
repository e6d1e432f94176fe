"""DMARC (RFC 7489, and RFC 9989 "DMARCbis") audit.

Why our own parser instead of checkdmarc at run time: checkdmarc is synchronous
and asks DNS through its own resolver, so its lookups would bypass the per-run
cache and fold timeouts into "missing". The rules below follow the RFCs; the
benchmark compares us against checkdmarc on the same zones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from handlers.findings import dns_unknown, finding
from handlers.model import Finding
from handlers.net import DNSResult, Resolver
from handlers.tags import TagError, parse_tags

POLICIES = ("none", "quarantine", "reject")
MAX_TREE_WALK = 8  # RFC 9989 §4.10: at most 8 DNS queries in a tree walk


@lru_cache(maxsize=1)
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def org_domain(domain: str) -> str:
    """Organizational domain (registrable name) via the Public Suffix List."""
    try:
        return str(_psl().privatesuffix(domain.lower()) or domain.lower())
    except Exception:
        labels = domain.lower().split(".")
        return ".".join(labels[-2:])


@dataclass
class DMARCRecord:
    location: str  # the domain whose _dmarc record applies
    text: str
    tags: dict[str, str]
    rua: list[str] = field(default_factory=list)
    ruf: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def policy(self) -> str:
        return self.tags.get("p", "").lower()

    @property
    def subdomain_policy(self) -> str:
        return self.tags.get("sp", self.policy).lower()


def _dmarc_records(res: DNSResult) -> list[str]:
    return [t for t in res.texts if t.strip().lower().startswith("v=dmarc1")]


def parse_dmarc(text: str, location: str) -> DMARCRecord:
    rec = DMARCRecord(location=location, text=text, tags={})
    try:
        rec.tags = parse_tags(text)
    except TagError as exc:
        rec.errors.append(str(exc))
        return rec
    first = text.strip().split(";", 1)[0].replace(" ", "")
    if first != "v=DMARC1":
        rec.errors.append("the record must start with exactly 'v=DMARC1'")
    p = rec.tags.get("p")
    if p is None:
        rec.errors.append("the required tag p= (policy) is missing")
    elif p.lower() not in POLICIES:
        rec.errors.append(f"p={p} is not a policy (use none, quarantine or reject)")
    for key in ("sp", "np"):
        if key in rec.tags and rec.tags[key].lower() not in POLICIES:
            rec.errors.append(f"{key}={rec.tags[key]} is not a policy")
    for key in ("adkim", "aspf"):
        if key in rec.tags and rec.tags[key].lower() not in ("r", "s"):
            rec.errors.append(f"{key}={rec.tags[key]} must be r (relaxed) or s (strict)")
    if "pct" in rec.tags:
        try:
            pct = int(rec.tags["pct"])
            if not 0 <= pct <= 100:
                raise ValueError
        except ValueError:
            rec.errors.append(f"pct={rec.tags['pct']} must be a number from 0 to 100")
    if "t" in rec.tags and rec.tags["t"].lower() not in ("y", "n"):
        rec.errors.append(f"t={rec.tags['t']} must be y or n")
    for key, dest in (("rua", rec.rua), ("ruf", rec.ruf)):
        if key not in rec.tags:
            continue
        for uri in (u.strip() for u in rec.tags[key].split(",")):
            if not uri:
                continue
            base = uri.split("!", 1)[0]
            if not base.lower().startswith(("mailto:", "https:")) or (
                base.lower().startswith("mailto:") and "@" not in base
            ):
                rec.errors.append(f"{key} URI '{uri}' is not a mailto: address or https: URL")
                continue
            dest.append(base)
    return rec


async def find_dmarc(resolver: Resolver, domain: str) -> tuple[DMARCRecord | None, list[DNSResult], list[str]]:
    """Find the applicable DMARC record: the domain's own, else a tree walk upwards.

    Returns (record, lookups made, names where several records were found).
    A failed lookup stops the walk: we can't tell what a missing answer said.
    """
    labels = domain.split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)][:MAX_TREE_WALK]
    results = await asyncio.gather(*(resolver.txt(f"_dmarc.{name}") for name in candidates))
    multiple: list[str] = []
    seen: list[DNSResult] = []
    for name, res in zip(candidates, results, strict=True):
        seen.append(res)
        if res.failed:
            return None, seen, multiple
        recs = _dmarc_records(res)
        if len(recs) > 1:
            multiple.append(name)
            return DMARCRecord(name, " | ".join(recs), {}, errors=["several DMARC records"]), seen, multiple
        if recs:
            return parse_dmarc(recs[0], name), seen, multiple
    return None, seen, multiple


async def audit_dmarc(resolver: Resolver, domain: str) -> tuple[list[Finding], dict[str, Any]]:
    out: list[Finding] = []
    rec, lookups, multiple = await find_dmarc(resolver, domain)
    details: dict[str, Any] = {"record": rec.text if rec else None, "location": rec.location if rec else None}
    failed = next((r for r in lookups if r.failed), None)
    if rec is None:
        if failed is not None:
            out.append(dns_unknown("dmarc.unknown", "DMARC", failed, domain, check="dmarc"))
            return out, details
        out.append(
            finding(
                "dmarc.missing",
                "critical",
                f"{domain} has no DMARC record",
                f"No TXT record at _dmarc.{domain} (nor at a parent domain) starts with v=DMARC1. "
                "Gmail, Yahoo and Microsoft require DMARC from bulk senders, and without it anyone can "
                "spoof this domain with no policy telling receivers what to do.",
                evidence={"target": domain},
                remediation=["dmarc.publish"],
            )
        )
        return out, details
    if multiple:
        out.append(
            finding(
                "dmarc.invalid",
                "critical",
                f"{rec.location} publishes more than one DMARC record",
                "Receivers ignore DMARC when _dmarc has several v=DMARC1 records (RFC 7489 §6.6.3). Keep one.",
                evidence={"target": domain, "record": rec.text, "error": "several records"},
                remediation=["dmarc.fix_syntax"],
            )
        )
        return out, details
    details["tags"] = rec.tags
    inherited = rec.location != domain
    if inherited:
        details["inherited_from"] = rec.location
    if rec.errors:
        out.append(
            finding(
                "dmarc.invalid",
                "critical",
                f"The DMARC record of {rec.location} is invalid",
                "Receivers may ignore it: " + "; ".join(rec.errors) + ".",
                evidence={"target": domain, "record": rec.text, "error": "; ".join(rec.errors)},
                remediation=["dmarc.fix_syntax"],
            )
        )
        if "p" not in rec.tags or rec.policy not in POLICIES:
            return out, details
    policy = rec.subdomain_policy if inherited else rec.policy
    if inherited:
        out.append(
            finding(
                "dmarc.inherited",
                "info",
                f"{domain} uses the DMARC record of {rec.location}",
                f"There is no _dmarc.{domain}; receivers apply the parent's "
                f"{'sp' if 'sp' in rec.tags else 'p'}={policy}.",
                evidence={"target": domain, "record": rec.text, "policy": policy, "host": rec.location},
            )
        )
    if policy == "none":
        out.append(
            finding(
                "dmarc.policy_none",
                "warning",
                f"DMARC policy for {domain} is p=none (monitoring only)",
                "p=none satisfies the Gmail/Yahoo bulk-sender minimum but tells receivers to take no action "
                "on spoofed mail. Once reports show your own mail passes, move to quarantine, then reject.",
                evidence={"target": domain, "record": rec.text, "policy": policy},
                remediation=["dmarc.move_to_enforcement"],
            )
        )
    elif not inherited and rec.tags.get("sp", "").lower() == "none":
        out.append(
            finding(
                "dmarc.sp_none",
                "warning",
                f"Subdomains of {domain} are not protected (sp=none)",
                f"p={policy} protects {domain} itself, but sp=none lets anyone spoof its subdomains.",
                evidence={"target": domain, "record": rec.text, "policy": policy, "value": "sp=none"},
                remediation=["dmarc.move_to_enforcement"],
            )
        )
    pct = rec.tags.get("pct")
    if policy != "none" and pct is not None and pct.isdigit() and int(pct) < 100:
        out.append(
            finding(
                "dmarc.pct_partial",
                "info",
                f"DMARC policy for {domain} applies to {pct}% of failing mail",
                "pct below 100 leaves part of spoofed mail unenforced (RFC 9989 drops pct; use t=y for testing).",
                evidence={"target": domain, "record": rec.text, "value": f"pct={pct}"},
                remediation=["dmarc.move_to_enforcement"],
            )
        )
    if rec.tags.get("t", "").lower() == "y":
        out.append(
            finding(
                "dmarc.testing",
                "info",
                f"DMARC for {domain} is in testing mode (t=y)",
                "RFC 9989: with t=y receivers apply one level less than the policy says.",
                evidence={"target": domain, "record": rec.text, "value": "t=y"},
                remediation=["dmarc.move_to_enforcement"],
            )
        )
    if not rec.rua:
        out.append(
            finding(
                "dmarc.no_rua",
                "warning",
                f"DMARC for {domain} requests no aggregate reports (no rua=)",
                "Without rua you cannot see who sends mail as your domain or whether your own mail passes, "
                "so you cannot safely tighten the policy.",
                evidence={"target": domain, "record": rec.text},
                remediation=["dmarc.add_rua"],
            )
        )
    out.extend(await _check_report_authorization(resolver, rec))
    if not any(f.severity in ("critical", "warning", "unknown") for f in out):
        out.append(
            finding(
                "dmarc.ok",
                "ok",
                f"DMARC for {domain}: p={policy}",
                f"Record at _dmarc.{rec.location}: {rec.text}",
                evidence={"target": domain, "record": rec.text, "policy": policy},
            )
        )
    return out, details


async def _check_report_authorization(resolver: Resolver, rec: DMARCRecord) -> list[Finding]:
    """RFC 7489 §7.1: reports to another organisation need its consent record."""
    own = org_domain(rec.location)
    external: dict[str, str] = {}
    for uri in rec.rua + rec.ruf:
        if not uri.lower().startswith("mailto:"):
            continue
        dest = uri[7:].rsplit("@", 1)[-1].strip().lower().rstrip(".")
        if dest and org_domain(dest) != own:
            external.setdefault(dest, uri)
    if not external:
        return []
    names = {dest: f"{rec.location}._report._dmarc.{dest}" for dest in external}
    results = await asyncio.gather(*(resolver.txt(n) for n in names.values()))
    out: list[Finding] = []
    for (dest, uri), res in zip(external.items(), results, strict=True):
        if res.failed:
            out.append(dns_unknown("dmarc.unknown", f"report authorization at {dest}", res, rec.location))
        elif not _dmarc_records(res):
            out.append(
                finding(
                    "dmarc.rua_unauthorized",
                    "warning",
                    f"DMARC reports for {rec.location} go to {dest}, which has not agreed to receive them",
                    f"{dest} publishes no TXT record 'v=DMARC1' at {names[dest]}, so receivers will not send "
                    f"reports to {uri} (RFC 7489 §7.1).",
                    evidence={"target": rec.location, "host": names[dest], "value": uri},
                    remediation=["dmarc.authorize_external_rua"],
                )
            )
    return out
