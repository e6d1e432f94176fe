"""SPF part of the domain audit: the record, its include/redirect tree, and the limits.

`audit_spf(resolver, domain)` fetches the domain's SPF record, then walks every
`include:` and `redirect=` (siblings concurrently) and checks the names of
`a`, `mx` and `exists` terms for void lookups. It asks only what a receiver's
check_host() asks (TXT of include/redirect targets, A/AAAA of `a` targets, MX
of `mx` targets, A of `exists` targets) through the shared per-run resolver,
so nothing is asked twice and the evaluator reuses the answers. Terms whose
target depends on macros (or on the client, like `ptr`) are not followed.

Returns (findings, details) where details["tree"] is the include tree::

    {"domain": "example.com", "via": "root" | "include" | "redirect",
     "term": None | "include:_spf.example.net",   # the parent's term that led here
     "record": "v=spf1 ..." | None, "status": "ok" | "none" | "multiple" | "permerror"
                                               | "unknown" | "loop" | "invalid" | "skipped",
     "lookups": 3,            # DNS-querying terms in this record itself
     "total_lookups": 7,      # this record plus everything it includes/redirects to
     "void": False,           # this record's own TXT lookup was void (NXDOMAIN/no TXT)
     "void_lookups": 0,       # void lookups caused by this record's a/mx/exists terms
     "error": None | "...",
     "terms": [{"term": "include:...", "lookups": 1, "total_lookups": 4, "void": False,
                "error": None, "note": None}, ...],
     "children": [ <node>, ... ]}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from handlers.findings import finding
from handlers.model import Finding, Severity
from handlers.net import DNSResult, Outcome, Resolver
from handlers.spf.evaluate import MAX_LOOKUPS, MAX_MX_NAMES, MAX_VOID_LOOKUPS, valid_domain
from handlers.spf.parser import (
    Mechanism,
    Modifier,
    SPFRecord,
    SPFSyntaxError,
    literal_text,
    parse_record,
    select_records,
)

RECORD_LENGTH_LIMIT = 450  # bytes of SPF text beyond which UDP answers get tight
MAX_NODES = 64  # records fetched per audit (a receiver stops after 10 lookups anyway)
MAX_DEPTH = 12


@dataclass
class _Term:
    term: str
    lookups: int = 0
    total_lookups: int = 0
    void: bool = False
    error: str | None = None
    note: str | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "term": self.term,
            "lookups": self.lookups,
            "total_lookups": self.total_lookups,
            "void": self.void,
            "error": self.error,
            "note": self.note,
        }


@dataclass
class _Node:
    domain: str
    via: str = "root"
    term: str | None = None
    record: str | None = None
    records: list[str] = field(default_factory=list)
    strings: int = 0  # character-strings the record is split into
    record_bytes: int = 0
    status: str = "ok"
    lookups: int = 0
    total_lookups: int = 0
    void: bool = False
    void_lookups: int = 0
    error: str | None = None
    bad_term: str | None = None
    parsed: SPFRecord | None = None
    terms: list[_Term] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "via": self.via,
            "term": self.term,
            "record": self.record,
            "status": self.status,
            "lookups": self.lookups,
            "total_lookups": self.total_lookups,
            "void": self.void,
            "void_lookups": self.void_lookups,
            "error": self.error,
            "terms": [t.to_dict() for t in self.terms],
            "children": [c.to_dict() for c in self.children],
        }

    def walk(self) -> list[_Node]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


class _Walker:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.nodes = 0

    async def walk(
        self, domain: str, via: str, term: str | None, ancestors: frozenset[str], depth: int
    ) -> _Node:
        node = _Node(domain=domain, via=via, term=term)
        key = domain.lower().rstrip(".")
        if key in ancestors:
            node.status, node.error = "loop", f"{domain} includes itself (loop): a receiver returns permerror"
            return node
        if depth > MAX_DEPTH or self.nodes >= MAX_NODES:
            node.status, node.error = "skipped", "not followed: far beyond what a receiver evaluates"
            return node
        if not valid_domain(domain):
            node.status, node.error = "invalid", f"{domain!r} is not a valid domain name"
            return node
        self.nodes += 1
        res = await self.resolver.query(domain, "TXT")
        if res.outcome is Outcome.INVALID:
            node.status, node.error = "invalid", f"{domain!r} is not a valid domain name"
            return node
        if not res.definitive:
            node.status, node.error = "unknown", f"the TXT lookup failed: {res.describe()}"
            return node
        if res.void:
            node.void = True
            node.status = "none"
            node.error = (
                "the domain does not exist" if res.outcome is Outcome.NXDOMAIN else "it has no TXT records"
            )
            return node
        spf_records = [r for r in res.records if select_records([b"".join(r.strings)])]
        texts = [b"".join(r.strings).decode("utf-8", "replace") for r in spf_records]
        node.records = texts
        if not spf_records:
            node.status, node.error = "none", "none of its TXT records is an SPF record (v=spf1)"
            return node
        if len(spf_records) > 1:
            node.status = "multiple"
            node.error = (
                f"{len(spf_records)} SPF records; receivers return permerror unless there is exactly one"
            )
            return node
        rdata = spf_records[0]
        raw = b"".join(rdata.strings)
        node.record = texts[0]
        node.strings = len(rdata.strings)
        node.record_bytes = len(raw)
        parsed = parse_record(raw)
        if isinstance(parsed, SPFSyntaxError):
            node.status, node.error, node.bad_term = "permerror", parsed.message, parsed.term
            return node
        node.parsed = parsed
        await self._terms(node, parsed, ancestors | {key}, depth)
        return node

    async def _terms(self, node: _Node, rec: SPFRecord, ancestors: frozenset[str], depth: int) -> None:
        tasks: list[asyncio.Future[Any] | Any] = []
        jobs: list[tuple[_Term, str, Any]] = []
        for t in rec.terms:
            entry = _Term(t.text)
            node.terms.append(entry)
            if isinstance(t, Modifier):
                if t.name != "redirect":
                    continue
                if rec.has_all:
                    entry.note = "ignored: the record has an 'all' term, so redirect= never applies"
                    continue
                entry.lookups = 1
                if t.has_macros:
                    entry.note = "target depends on macros: not followed"
                    continue
                target = literal_text(t.tokens).rstrip(".")
                jobs.append((entry, "redirect", self.walk(target, "redirect", t.text, ancestors, depth + 1)))
                continue
            assert isinstance(t, Mechanism)
            if not t.costs_lookup:
                continue
            entry.lookups = 1
            if t.name == "ptr":
                entry.note = "ptr: depends on the client address; slow and deprecated"
                continue
            if t.has_macros:
                entry.note = "target depends on macros: not followed"
                continue
            target = literal_text(t.domain_tokens).rstrip(".") if t.domain_spec is not None else node.domain
            entry.host = target
            if t.name == "include":
                jobs.append((entry, "include", self.walk(target, "include", t.text, ancestors, depth + 1)))
            elif t.name == "a":
                jobs.append((entry, "a", self.resolver.addresses(target)))
            elif t.name == "mx":
                jobs.append((entry, "mx", self.resolver.query(target, "MX")))
            else:
                jobs.append((entry, "exists", self.resolver.query(target, "A")))
        tasks = [j[2] for j in jobs]
        results = await asyncio.gather(*tasks)
        for (entry, kind, _), result in zip(jobs, results, strict=True):
            if kind in ("include", "redirect"):
                child: _Node = result
                node.children.append(child)
                entry.total_lookups = entry.lookups + child.total_lookups
                entry.void = child.void
                if child.status != "ok":
                    entry.error = child.error
            elif kind == "a":
                a, aaaa = result
                _address_outcome(entry, [a, aaaa])
            elif kind == "mx":
                _single_outcome(entry, result)
                if result.ok and len(result.records) > MAX_MX_NAMES:
                    entry.note = "mx-limit"
                    entry.error = (
                        f"{entry.host} has {len(result.records)} MX records; receivers look up at most "
                        f"{MAX_MX_NAMES} and return permerror"
                    )
            else:
                _single_outcome(entry, result)
        for entry in node.terms:
            if not entry.total_lookups:
                entry.total_lookups = entry.lookups
        node.lookups = sum(e.lookups for e in node.terms)
        node.total_lookups = node.lookups + sum(c.total_lookups for c in node.children)
        node.void_lookups = sum(
            1
            for e in node.terms
            if e.void and not e.term.lower().lstrip("+-~?").startswith(("include:", "redirect="))
        )


def _address_outcome(entry: _Term, results: list[DNSResult]) -> None:
    if any(r.ok for r in results):
        return
    failed = [r for r in results if not r.definitive and r.outcome is not Outcome.INVALID]
    if failed:
        entry.error = f"the {failed[0].rdtype} lookup for {entry.host} failed: {failed[0].describe()}"
        entry.note = "dns-failure"
        return
    if any(r.outcome is Outcome.INVALID for r in results):
        entry.error = f"{entry.host!r} is not a valid DNS name"
        return
    entry.void = True
    entry.note = "void: " + (
        "the name does not exist"
        if any(r.outcome is Outcome.NXDOMAIN for r in results)
        else "no A/AAAA records"
    )


def _single_outcome(entry: _Term, res: DNSResult) -> None:
    if res.ok:
        return
    if res.void:
        entry.void = True
        entry.note = "void: " + (
            "the name does not exist" if res.outcome is Outcome.NXDOMAIN else f"no {res.rdtype} records"
        )
        return
    if res.outcome is Outcome.INVALID:
        entry.error = f"{entry.host!r} is not a valid DNS name"
        return
    entry.error = f"the {res.rdtype} lookup for {entry.host} failed: {res.describe()}"
    entry.note = "dns-failure"


# ---------------------------------------------------------------------------


def _finding(
    code: str, severity: Severity, title: str, detail: str, evidence: dict[str, Any], remediation: list[str]
) -> Finding:
    return finding(code, severity, title, detail, evidence=evidence, remediation=remediation, check="spf")


async def audit_spf(resolver: Resolver, domain: str) -> tuple[list[Finding], dict[str, Any]]:
    """Audit the SPF policy of `domain`; returns (findings, details with the include tree)."""
    domain = domain.rstrip(".")
    root = await _Walker(resolver).walk(domain, "root", None, frozenset(), 0)
    findings: list[Finding] = []
    nodes = root.walk()
    void_names = [n.domain for n in nodes if n.via != "root" and n.void] + [
        f"{t.host}"
        for n in nodes
        for t in n.terms
        if t.void and not t.term.lower().lstrip("+-~?").startswith(("include:", "redirect="))
    ]
    details: dict[str, Any] = {
        "domain": domain,
        "record": root.record,
        "records": root.records,
        "status": root.status,
        "lookups": root.total_lookups,
        "lookup_limit": MAX_LOOKUPS,
        "void_lookups": len(void_names),
        "void_limit": MAX_VOID_LOOKUPS,
        "tree": root.to_dict(),
    }
    ev: dict[str, Any] = {"target": domain}

    # -- the record itself ------------------------------------------------
    if root.status == "unknown":
        findings.append(
            _finding(
                "spf.unknown",
                "unknown",
                f"Could not fetch the SPF record of {domain}",
                f"The TXT lookup for {domain} did not get an answer ({root.error}). "
                "Whether the domain has a valid SPF policy could not be determined.",
                {**ev, "error": root.error},
                [],
            )
        )
        return findings, details
    if root.status in ("none", "invalid"):
        why = root.error or "no SPF record"
        findings.append(
            _finding(
                "spf.missing",
                "critical",
                f"{domain} has no SPF record",
                f"No 'v=spf1' TXT record was found at {domain} ({why}). Receivers get SPF 'none' for its mail, "
                "which weakens DMARC and is rejected or spam-foldered by Gmail, Yahoo and Microsoft for bulk senders.",
                {**ev, "error": why},
                ["spf.add_record"],
            )
        )
        return findings, details
    if root.status == "multiple":
        findings.append(
            _finding(
                "spf.multiple_records",
                "critical",
                f"{domain} publishes {len(root.records)} SPF records",
                f"{domain} has {len(root.records)} TXT records starting with 'v=spf1'. RFC 7208 §4.5 makes this a "
                "permerror: receivers ignore SPF entirely for this domain. Merge them into one record.",
                {**ev, "record": root.records, "count": len(root.records), "limit": 1},
                ["spf.merge_records"],
            )
        )
        return findings, details
    if root.status == "permerror":
        findings.append(
            _finding(
                "spf.permerror",
                "critical",
                f"The SPF record of {domain} has a syntax error",
                f"Receivers return permerror for {domain}: {root.error}.",
                {**ev, "record": root.record, "error": root.error, "value": root.bad_term},
                ["spf.fix_syntax"],
            )
        )
        return findings, details

    assert root.parsed is not None
    # -- the include/redirect tree ------------------------------------------
    for node in nodes[1:]:
        how = "include:" if node.via == "include" else "redirect="
        where = f"{how}{node.domain}"
        base = {**ev, "host": node.domain, "value": node.term}
        if node.status in ("none", "invalid"):
            findings.append(
                _finding(
                    "spf.include_missing",
                    "critical",
                    f"{where} in the SPF policy of {domain} has no SPF record",
                    f"The SPF policy of {domain} uses {where}, but {node.domain} has no SPF record ({node.error}). "
                    "A receiver that reaches this term returns permerror.",
                    {**base, "error": node.error},
                    ["spf.fix_syntax"],
                )
            )
        elif node.status == "multiple":
            findings.append(
                _finding(
                    "spf.multiple_records",
                    "critical",
                    f"{node.domain} (reached by {where}) publishes {len(node.records)} SPF records",
                    f"{node.domain} has {len(node.records)} 'v=spf1' records; receivers that evaluate {where} for "
                    f"{domain} return permerror.",
                    {**base, "record": node.records, "count": len(node.records), "limit": 1},
                    ["spf.merge_records"],
                )
            )
        elif node.status == "permerror":
            findings.append(
                _finding(
                    "spf.permerror",
                    "critical",
                    f"The SPF record of {node.domain} (reached by {where}) has a syntax error",
                    f"Receivers evaluating the SPF policy of {domain} return permerror when they reach {where}: {node.error}.",
                    {**base, "record": node.record, "error": node.error},
                    ["spf.fix_syntax"],
                )
            )
        elif node.status == "loop":
            findings.append(
                _finding(
                    "spf.permerror",
                    "critical",
                    f"The SPF policy of {domain} loops through {node.domain}",
                    f"{where} leads back to a record that is already being evaluated; receivers run into the "
                    f"{MAX_LOOKUPS}-lookup limit and return permerror.",
                    {**base, "error": node.error},
                    ["spf.fix_syntax"],
                )
            )
        elif node.status == "unknown":
            findings.append(
                _finding(
                    "spf.unknown",
                    "unknown",
                    f"Could not fetch the SPF record of {node.domain} (reached by {where})",
                    f"The TXT lookup for {node.domain} did not get an answer ({node.error}); receivers would return "
                    f"temperror for mail from {domain} that reaches this term.",
                    {**base, "error": node.error},
                    [],
                )
            )
        elif node.status == "ok" and node.via == "include":
            all_m = node.parsed.all_mechanism if node.parsed else None
            if all_m is not None and all_m.qualifier == "+":
                findings.append(
                    _finding(
                        "spf.permissive_all",
                        "critical",
                        f"include:{node.domain} authorises every host on the Internet",
                        f"The SPF policy of {domain} includes {node.domain}, whose record ends in '{all_m.text}': the "
                        f"include returns pass for any IP, so anyone can send as {domain} with SPF pass.",
                        {**base, "record": node.record, "value": all_m.text},
                        ["spf.tighten_all"],
                    )
                )

    for node in nodes:
        for t in node.terms:
            if t.note == "dns-failure":
                findings.append(
                    _finding(
                        "spf.unknown",
                        "unknown",
                        f"A lookup for '{t.term}' in the SPF record of {node.domain} failed",
                        f"{t.error}. Receivers that reach this term return temperror.",
                        {**ev, "host": t.host, "value": t.term, "error": t.error},
                        [],
                    )
                )
            elif t.note == "mx-limit":
                findings.append(
                    _finding(
                        "spf.permerror",
                        "critical",
                        f"'{t.term}' in the SPF record of {node.domain} names too many MX hosts",
                        f"{t.error}.",
                        {**ev, "host": t.host, "value": t.term, "error": t.error, "limit": MAX_MX_NAMES},
                        ["spf.fix_syntax"],
                    )
                )

    # -- limits ---------------------------------------------------------------
    total = root.total_lookups
    if total > MAX_LOOKUPS:
        heavy = sorted((t for t in root.terms if t.total_lookups > 1), key=lambda t: -t.total_lookups)[:4]
        heavy_text = ", ".join(f"{t.term} ({t.total_lookups})" for t in heavy)
        findings.append(
            _finding(
                "spf.too_many_lookups",
                "critical",
                f"The SPF policy of {domain} needs {total} DNS lookups (limit {MAX_LOOKUPS})",
                f"Evaluating {domain}'s SPF policy takes {total} DNS-querying terms (include, a, mx, ptr, exists, "
                f"redirect) counting everything it includes; RFC 7208 §4.6.4 allows {MAX_LOOKUPS}. Receivers return "
                f"permerror for senders not matched in the first {MAX_LOOKUPS}."
                + (f" Largest contributors: {heavy_text}." if heavy_text else ""),
                {**ev, "record": root.record, "count": total, "limit": MAX_LOOKUPS},
                ["spf.reduce_lookups"],
            )
        )
    voids = len(void_names)
    if voids > MAX_VOID_LOOKUPS:
        findings.append(
            _finding(
                "spf.too_many_void_lookups",
                "warning",
                f"The SPF policy of {domain} has {voids} void lookups (limit {MAX_VOID_LOOKUPS})",
                f"These names in {domain}'s SPF policy do not exist or have no records: {', '.join(void_names)}. "
                f"After {MAX_VOID_LOOKUPS} such lookups receivers return permerror (RFC 7208 §4.6.4).",
                {**ev, "record": root.record, "count": voids, "limit": MAX_VOID_LOOKUPS, "value": void_names},
                ["spf.fix_void_lookups"],
            )
        )

    # -- the final 'all' (the root record, or the end of its redirect chain) ----
    effective, eff_domain = _effective_all(root)
    if effective is not None:
        q = effective.qualifier
        if q == "+":
            findings.append(
                _finding(
                    "spf.permissive_all",
                    "critical",
                    f"The SPF policy of {domain} ends in '{effective.text}': every host passes",
                    f"'{effective.text}' in the record of {eff_domain} gives SPF pass to mail from any IP address, so "
                    f"anyone can send as {domain}. Use '-all' (or '~all') after listing your senders.",
                    {**ev, "record": root.record, "value": effective.text},
                    ["spf.tighten_all"],
                )
            )
        elif q == "?":
            findings.append(
                _finding(
                    "spf.permissive_all",
                    "warning",
                    f"The SPF policy of {domain} ends in '?all' (neutral)",
                    f"'?all' in the record of {eff_domain} tells receivers nothing about unlisted senders, so SPF does "
                    "not protect the domain against spoofing. Use '-all' or '~all'.",
                    {**ev, "record": root.record, "value": effective.text},
                    ["spf.tighten_all"],
                )
            )
        elif q == "~":
            findings.append(
                _finding(
                    "spf.all_softfail",
                    "info",
                    f"The SPF policy of {domain} ends in '~all' (softfail)",
                    "Unlisted senders get softfail: receivers accept but may mark the mail. With DMARC enforcing, "
                    "'~all' is common and fine; '-all' asks receivers to reject unlisted senders outright.",
                    {**ev, "value": effective.text},
                    [],
                )
            )
        else:
            findings.append(
                _finding(
                    "spf.all_fail",
                    "info",
                    f"The SPF policy of {domain} ends in '-all' (fail)",
                    "Unlisted senders get SPF fail. Make sure every service that sends as this domain is listed.",
                    {**ev, "value": effective.text},
                    [],
                )
            )
    elif eff_domain is not None:
        findings.append(
            _finding(
                "spf.no_all",
                "warning",
                f"The SPF policy of {domain} has no 'all' term",
                f"The record of {eff_domain} ends without 'all' or a redirect, so unlisted senders get the default "
                "result neutral, the same as '?all'. End the record with '-all' or '~all'.",
                {**ev, "record": root.record},
                ["spf.tighten_all"],
            )
        )

    # -- mechanisms and style ---------------------------------------------------
    for node in nodes:
        if node.parsed is None:
            continue
        ptrs = [m.text for m in node.parsed.mechanisms if m.name == "ptr"]
        if ptrs:
            where = "" if node is root else f" (reached by {node.via}:{node.domain})"
            findings.append(
                _finding(
                    "spf.ptr_mechanism",
                    "warning",
                    f"The SPF record of {node.domain}{where} uses 'ptr'",
                    "RFC 7208 §5.5 says 'ptr' SHOULD NOT be used: it is slow, unreliable and some receivers ignore "
                    "it. List the senders with ip4:/ip6:/a/include instead.",
                    {**ev, "host": node.domain, "record": node.record, "value": ptrs[0]},
                    ["spf.remove_ptr"],
                )
            )
    macro_terms = [(n.domain, t.text) for n in nodes if n.parsed for t in n.parsed.terms if t.has_macros]
    if macro_terms:
        findings.append(
            _finding(
                "spf.macros",
                "info",
                f"The SPF policy of {domain} uses macros",
                "Terms with macros depend on the sender, client or HELO and are evaluated per message; this audit "
                "does not follow them: " + ", ".join(f"{t} ({d})" for d, t in macro_terms[:6]) + ".",
                {**ev, "value": [t for _, t in macro_terms]},
                [],
            )
        )
    if root.record_bytes > RECORD_LENGTH_LIMIT:
        findings.append(
            _finding(
                "spf.record_too_long",
                "warning",
                f"The SPF record of {domain} is {root.record_bytes} bytes long",
                f"Records over about {RECORD_LENGTH_LIMIT} bytes make the TXT answer for {domain} exceed the 512-byte "
                "classic UDP size together with other TXT records, forcing TCP fallback that some receivers do not "
                "do. Move senders into an include: on a subdomain or use ip4 ranges.",
                {**ev, "record": root.record, "count": root.record_bytes, "limit": RECORD_LENGTH_LIMIT},
                ["spf.reduce_lookups"],
            )
        )
    if root.strings > 1:
        findings.append(
            _finding(
                "spf.multi_string",
                "info",
                f"The SPF record of {domain} is split into {root.strings} strings",
                "A TXT string holds at most 255 bytes, so long records are split; receivers join the strings with no "
                "space in between (RFC 7208 §3.3). Check that each split falls inside a term or that the next string "
                "starts with a space.",
                {**ev, "record": root.record, "count": root.strings, "limit": 255},
                [],
            )
        )

    if not any(f.severity in ("critical", "warning", "unknown") for f in findings):
        findings.insert(
            0,
            _finding(
                "spf.ok",
                "ok",
                f"{domain} has a valid SPF record",
                f"One SPF record, valid syntax, {total} of {MAX_LOOKUPS} DNS lookups, {voids} void lookups.",
                {**ev, "record": root.record, "count": total, "limit": MAX_LOOKUPS},
                [],
            ),
        )
    return findings, details


def _effective_all(root: _Node) -> tuple[Mechanism | None, str | None]:
    """The 'all' that decides for unlisted senders: the root's, or the one at the end of its redirects.

    Returns (None, domain) when the record chain ends without 'all' (default neutral), and
    (None, None) when it cannot be told (a redirect that was not followed or failed).
    """
    node = root
    for _ in range(MAX_DEPTH + 1):
        if node.parsed is None:
            return None, None
        all_m = node.parsed.all_mechanism
        if all_m is not None:
            return all_m, node.domain
        if node.parsed.redirect is None:
            return None, node.domain
        nxt = next((c for c in node.children if c.via == "redirect"), None)
        if nxt is None:
            return None, None
        node = nxt
    return None, None
