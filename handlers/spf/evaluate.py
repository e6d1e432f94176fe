"""RFC 7208 check_host() over the project's one async DNS layer.

`check_host()` follows RFC 7208 §4–§7: TXT-only record selection, the
10-lookup limit (§4.6.4), the 2-void-lookup limit, the 10-name limits of `mx`
and `ptr`, macro expansion (§7) including `exp=` explanations (§6.2),
temperror on DNS failures and `none` for invalid domains (§4.3). Mechanisms are
evaluated one after another in record order, exactly as a receiver does; only
the independent lookups inside one term (the addresses of several MX hosts,
the validation of several PTR names) run concurrently.

`spf_check()` wraps it in a `Report(kind="spf")` with a trace of every record
fetched and every term evaluated, so a user sees which term matched.

Void lookups are counted per term, as §4.6.4 words it ("terms for which DNS
queries return ... an answer count of 0, or a Name Error"): an `a`, `mx`,
`ptr` or `exists` term whose own query is NXDOMAIN/NODATA, and an
`include`/`redirect` whose target has no TXT at all. The address lookups of MX
hosts and PTR names do not add void lookups of their own. An `exp=` lookup never
counts (§6.2 / §4.6.4).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from handlers.model import Finding, Report, format_ip
from handlers.net import DNSResult, Outcome, Resolver
from handlers.spf.parser import (
    Macro,
    MacroToken,
    Mechanism,
    Modifier,
    SPFRecord,
    SPFSyntaxError,
    parse_explanation,
    parse_record,
    select_records,
)

MAX_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_MX_NAMES = 10
MAX_PTR_NAMES = 10
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _PermError(Exception):
    def __init__(self, message: str, code: str = "spf.permerror", domain: str = "", term: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.domain = domain
        self.term = term


class _TempError(Exception):
    def __init__(self, message: str, domain: str = "", term: str | None = None, host: str = ""):
        super().__init__(message)
        self.message = message
        self.domain = domain
        self.term = term
        self.host = host


@dataclass
class SPFResult:
    """The result of check_host(): one of RESULTS plus how it was reached."""

    result: str
    domain: str
    ip: str
    sender: str
    helo: str | None = None
    mechanism: str | None = None  # the deciding term in the top-level record (or its redirect target)
    matched_domain: str | None = None  # the domain whose record holds the innermost matching term
    # "domain: term" from the top record to the innermost matching term, through includes and redirects
    path: list[str] = field(default_factory=list)
    explanation: str | None = None  # the exp= text for a fail, when the domain publishes one
    problem: str | None = None  # why none / permerror / temperror, in English
    problem_code: str | None = None  # spf.permerror, spf.too_many_lookups, spf.multiple_records, ...
    problem_domain: str | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    lookups: int = 0
    void_lookups: int = 0
    record: str | None = None  # the top-level SPF record, when one was found

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "domain": self.domain,
            "ip": format_ip(self.ip),
            "sender": self.sender,
            "helo": self.helo,
            "record": self.record,
            "explanation": self.explanation,
            "mechanism": self.mechanism,
            "matched_domain": self.matched_domain,
            "path": list(self.path),
            "problem": self.problem,
            "trace": list(self.trace),
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
        }


@dataclass
class _Decision:
    result: str
    term: Mechanism | None = None
    domain: str = ""
    path: list[tuple[str, str]] = field(default_factory=list)  # (domain, term) from the top down
    exp: tuple[Modifier, str] | None = None  # the exp= of the record that decided, and its domain
    problem: str | None = None


class _Ctx:
    def __init__(
        self, resolver: Resolver, ip: IPAddress, sender: str, helo: str | None, receiver: str, domain: str
    ) -> None:
        self.resolver = resolver
        self.ip = ip
        self.sender_raw = sender
        local, at, sdomain = sender.rpartition("@")
        if not at:
            local, sdomain = "", sender
        # §4.3: no local-part -> "postmaster"; no domain at all (an empty sender) -> the checked domain.
        sdomain = sdomain or domain
        self.local = local or "postmaster"
        self.sender_domain = sdomain
        self.sender = f"{self.local}@{sdomain}"
        self.helo = helo
        self.receiver = receiver
        self.lookups = 0
        self.voids = 0
        self.trace: list[dict[str, Any]] = []
        self._validated: dict[str, list[str]] = {}
        self._ptr_names: list[str] | None = None

    # -- limits ----------------------------------------------------------
    def count_lookup(self, domain: str, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(
                f"more than {MAX_LOOKUPS} DNS-querying terms (include, a, mx, ptr, exists, redirect) "
                f"were needed; {term!r} in {domain} is number {self.lookups}",
                "spf.too_many_lookups",
                domain,
                term,
            )

    def count_void(self, domain: str, term: str) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:
            raise _PermError(
                f"more than {MAX_VOID_LOOKUPS} void lookups (names that do not exist or have no records); "
                f"{term!r} in {domain} is number {self.voids}",
                "spf.too_many_void_lookups",
                domain,
                term,
            )

    def log(self, depth: int, domain: str, step: str, **kw: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"depth": depth, "domain": domain, "step": step}
        entry.update({k: v for k, v in kw.items() if v is not None})
        self.trace.append(entry)
        return entry

    # -- ip views -----------------------------------------------------------
    @property
    def v4(self) -> bool:
        return self.ip.version == 4

    @property
    def addr_type(self) -> str:
        return "A" if self.v4 else "AAAA"


# ---------------------------------------------------------------------------
# Public API


def normalize_ip(ip: str) -> IPAddress:
    """Parse the client address; an IPv4-mapped IPv6 address is treated as IPv4 (RFC 7208 §5)."""
    addr = ipaddress.ip_address(ip.strip().strip("[]"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def valid_domain(domain: str) -> bool:
    """RFC 7208 §4.3: a <domain> check_host() can work with (else the result is "none")."""
    name = domain[:-1] if domain.endswith(".") else domain
    if not name or len(name) > 253 or name.startswith("["):
        return False
    labels = name.split(".")
    if len(labels) < 2:
        return False
    return all(0 < len(label) <= 63 for label in labels)


async def check_host(
    resolver: Resolver,
    ip: str,
    domain: str,
    sender: str,
    helo: str | None = None,
    *,
    receiver: str = "unknown",
) -> SPFResult:
    """RFC 7208 check_host(<ip>, <domain>, <sender>). Never raises for DNS or record problems.

    Raises ValueError only when `ip` is not an IP address.
    """
    addr = normalize_ip(ip)
    top = domain[:-1] if domain.endswith(".") else domain
    ctx = _Ctx(resolver, addr, sender, helo, receiver, top)
    out = SPFResult(result="none", domain=top, ip=str(addr), sender=sender, helo=helo)
    try:
        decision = await _check(ctx, top, 0, out)
    except _PermError as exc:
        out.result = "permerror"
        out.problem = exc.message
        out.problem_code = exc.code
        out.problem_domain = exc.domain or top
        ctx.log(0, top, "result", result="permerror", detail=exc.message)
    except _TempError as exc:
        out.result = "temperror"
        out.problem = exc.message
        out.problem_code = "spf.unknown"
        out.problem_domain = exc.domain or top
        ctx.log(0, top, "result", result="temperror", detail=exc.message)
    else:
        out.result = decision.result
        # The deciding term: the first one that is not a redirect= (a redirect replaces the record).
        out.mechanism = next((t for _, t in decision.path if not t.lower().startswith("redirect=")), None)
        out.path = [f"{d}: {t}" for d, t in decision.path]
        out.matched_domain = decision.domain if decision.term is not None else None
        if decision.problem:
            out.problem = decision.problem
            out.problem_code = "spf.missing" if decision.result == "none" else None
            out.problem_domain = top
        if decision.result == "fail" and decision.exp is not None:
            out.explanation = await _explanation(ctx, *decision.exp)
            if out.explanation is not None:
                ctx.log(0, decision.exp[1], "explanation", term=decision.exp[0].text, detail=out.explanation)
        ctx.log(0, top, "result", result=decision.result, term=out.mechanism)
    out.trace = ctx.trace
    out.lookups = ctx.lookups
    out.void_lookups = ctx.voids
    return out


async def spf_check(
    resolver: Resolver, domain: str, ip: str, helo: str | None = None, sender: str | None = None
) -> Report:
    """`mailcheck spf DOMAIN IP [--helo H] [--sender ADDR]`: check_host with its trace, as a Report."""
    t0 = time.monotonic()
    dom = domain[:-1] if domain.endswith(".") else domain
    snd = sender if sender is not None else f"postmaster@{dom}"
    res = await check_host(resolver, ip, dom, snd, helo)
    spf: dict[str, Any] = res.to_dict()
    report = Report(kind="spf", subject=f"{dom} {format_ip(ip)}", spf=spf)
    report.findings.append(_result_finding(res))
    open_door = _permissive_pass(res)
    if open_door is not None:
        report.findings.append(open_door)
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    report.dns_stats = resolver.stats.as_dict()
    return report


# ---------------------------------------------------------------------------
# Evaluation


async def _check(
    ctx: _Ctx, domain: str, depth: int, top: SPFResult | None = None, via: str | None = None
) -> _Decision:
    """check_host() for one domain; raises _PermError/_TempError for those results."""
    if domain.endswith("."):
        domain = domain[:-1]
    if not valid_domain(domain):
        ctx.log(depth, domain, "record", outcome="none", detail="not a valid domain name")
        return _Decision("none", domain=domain, problem=f"{domain!r} is not a valid domain name")
    res = await ctx.resolver.query(domain, "TXT")
    if res.outcome is Outcome.INVALID:
        ctx.log(depth, domain, "record", outcome="none", detail=res.describe())
        return _Decision("none", domain=domain, problem=f"{domain!r} is not a valid domain name")
    if not res.definitive:
        ctx.log(depth, domain, "record", outcome="temperror", detail=f"TXT lookup: {res.describe()}")
        raise _TempError(f"the TXT lookup for {domain} failed: {res.describe()}", domain)
    if res.void:
        if via is not None:
            ctx.count_void(domain, f"{via}:{domain}")
        what = "the domain does not exist" if res.outcome is Outcome.NXDOMAIN else "no TXT records"
        ctx.log(depth, domain, "record", outcome="none", detail=what)
        return _Decision("none", domain=domain, problem=f"{domain} has no SPF record ({what})")
    found = select_records(res.text_bytes)
    if not found:
        ctx.log(depth, domain, "record", outcome="none", detail="no v=spf1 record among its TXT records")
        return _Decision("none", domain=domain, problem=f"{domain} has no SPF record")
    if len(found) > 1:
        shown = [r.decode("utf-8", "replace") if isinstance(r, bytes) else r for r in found]
        ctx.log(
            depth, domain, "record", outcome="permerror", detail=f"{len(found)} SPF records", records=shown
        )
        raise _PermError(
            f"{domain} publishes {len(found)} SPF records; exactly one is allowed",
            "spf.multiple_records",
            domain,
        )
    raw = found[0]
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if top is not None and depth == 0:
        top.record = text
    parsed = parse_record(raw)
    if isinstance(parsed, SPFSyntaxError):
        ctx.log(depth, domain, "record", record=text, outcome="permerror", detail=parsed.message)
        raise _PermError(
            f"syntax error in the SPF record of {domain}: {parsed.message}",
            "spf.permerror",
            domain,
            parsed.term,
        )
    ctx.log(depth, domain, "record", record=text)
    return await _evaluate(ctx, domain, parsed, depth)


async def _evaluate(ctx: _Ctx, domain: str, rec: SPFRecord, depth: int) -> _Decision:
    for mech in rec.mechanisms:
        entry = ctx.log(depth, domain, "term", term=mech.text)
        try:
            matched, detail, inner = await _mechanism(ctx, domain, mech, depth)
        except _PermError as exc:
            entry.update(outcome="permerror", detail=exc.message, lookups=ctx.lookups)
            raise
        except _TempError as exc:
            entry.update(outcome="temperror", detail=exc.message, lookups=ctx.lookups)
            raise
        entry["outcome"] = "match" if matched else "no match"
        if detail is not None:
            entry["detail"] = detail
        entry["lookups"] = ctx.lookups
        if matched:
            path = [(domain, mech.text), *(inner.path if inner else [])]
            innermost = inner.domain if inner and inner.term is not None else domain
            return _Decision(mech.result, mech, innermost, path, (rec.exp, domain) if rec.exp else None)
    if rec.redirect is not None and not rec.has_all:
        mod = rec.redirect
        ctx.count_lookup(domain, mod.text)
        target = await _expand_domain(ctx, mod.tokens, domain)
        ctx.log(depth, domain, "redirect", term=mod.text, detail=f"-> {target}", lookups=ctx.lookups)
        inner = await _check(ctx, target, depth + 1, via="redirect")
        if inner.result == "none":
            raise _PermError(
                f"redirect={target} in {domain}: {inner.problem or 'the target has no SPF record'}",
                "spf.permerror",
                domain,
                mod.text,
            )
        # The redirect target's result (and its exp=) stands for this record (§6.1, §6.2).
        return _Decision(inner.result, inner.term, inner.domain, [(domain, mod.text), *inner.path], inner.exp)
    detail = "no term matched: the default result is neutral"
    if rec.redirect is not None:
        detail += " (redirect= is ignored because the record has 'all')"
    ctx.log(depth, domain, "default", outcome="neutral", detail=detail)
    return _Decision("neutral", None, domain, [], None)


async def _mechanism(
    ctx: _Ctx, domain: str, mech: Mechanism, depth: int
) -> tuple[bool, str | None, _Decision | None]:
    name = mech.name
    if name == "all":
        return True, None, None
    if name in ("ip4", "ip6"):
        net = mech.network
        assert net is not None
        if net.version != ctx.ip.version:
            return False, f"the client is IPv{ctx.ip.version}", None
        return ctx.ip in net, None, None

    ctx.count_lookup(domain, mech.text)
    if mech.domain_spec is not None:
        target = await _expand_domain(ctx, mech.domain_tokens, domain)
    else:
        target = domain

    if name == "include":
        inner = await _check(ctx, target, depth + 1, via="include")
        if inner.result == "none":
            raise _PermError(
                f"include:{target} in {domain}: {inner.problem or 'the target has no SPF record'}",
                "spf.include_missing",
                domain,
                mech.text,
            )
        if inner.result == "pass":
            return True, f"{target} returned pass", inner
        return False, f"{target} returned {inner.result}", None

    if name == "a":
        res = await ctx.resolver.query(target, ctx.addr_type)
        if not _usable(ctx, res, domain, mech, target):
            return False, _void_text(res, target), None
        bits = mech.cidr4 if ctx.v4 else mech.cidr6
        return _match_any(ctx.ip, res.addresses, bits), _addr_detail(res, target), None

    if name == "mx":
        res = await ctx.resolver.query(target, "MX")
        if not _usable(ctx, res, domain, mech, target):
            return False, _void_text(res, target), None
        if len(res.records) > MAX_MX_NAMES:
            raise _PermError(
                f"{mech.text!r} in {domain}: {target} has {len(res.records)} MX records; "
                f"at most {MAX_MX_NAMES} may be looked up",
                "spf.permerror",
                domain,
                mech.text,
            )
        hosts = [h for _, h in res.mx if h not in ("", ".")]
        results = await asyncio.gather(*(ctx.resolver.query(h, ctx.addr_type) for h in hosts))
        bits = mech.cidr4 if ctx.v4 else mech.cidr6
        failed: DNSResult | None = None
        for r in results:
            if r.ok and _match_any(ctx.ip, r.addresses, bits):
                return True, f"MX host {r.name} has a matching address", None
            if not r.definitive and r.outcome is not Outcome.INVALID:
                failed = failed or r
        if failed is not None:
            raise _TempError(
                f"{mech.text!r} in {domain}: the address lookup of MX host {failed.name} failed: {failed.describe()}",
                domain,
                mech.text,
                failed.name,
            )
        return False, f"MX hosts of {target}: {', '.join(hosts) or '(null MX)'}", None

    if name == "ptr":
        names, void = await _ptr_names(ctx)
        if void:
            ctx.count_void(domain, mech.text)
        t = target.lower()
        candidates = [n for n in names if n.lower() == t or n.lower().endswith("." + t)]
        validated = await _validate(ctx, candidates)
        if validated:
            return True, f"validated PTR name {validated[0]}", None
        return False, f"no validated PTR name in {target}" if names else "no PTR names", None

    # exists
    res = await ctx.resolver.query(target, "A")
    if not _usable(ctx, res, domain, mech, target):
        return False, _void_text(res, target), None
    return True, f"{target} has an A record", None


def _usable(ctx: _Ctx, res: DNSResult, domain: str, mech: Mechanism, target: str) -> bool:
    """True when `res` holds records; counts void lookups; raises temperror on DNS failure."""
    if res.ok:
        return True
    if res.outcome is Outcome.INVALID:
        return False  # not a name DNS can hold: treated as non-existent (RFC 7208 §4.8)
    if res.void:
        ctx.count_void(domain, mech.text)
        return False
    raise _TempError(
        f"{mech.text!r} in {domain}: the {res.rdtype} lookup for {target} failed: {res.describe()}",
        domain,
        mech.text,
        target,
    )


def _void_text(res: DNSResult, target: str) -> str:
    if res.outcome is Outcome.INVALID:
        return f"{target!r} is not a valid DNS name"
    if res.outcome is Outcome.NXDOMAIN:
        return f"{target} does not exist (void lookup)"
    return f"{target} has no {res.rdtype} records (void lookup)"


def _addr_detail(res: DNSResult, target: str) -> str:
    addrs = res.addresses
    shown = ", ".join(format_ip(a) for a in addrs[:5]) + (" ..." if len(addrs) > 5 else "")
    return f"{target} {res.rdtype}: {shown}"


def _match_any(ip: IPAddress, addresses: list[str], bits: int) -> bool:
    for a in addresses:
        try:
            net = ipaddress.ip_network(f"{a}/{bits}", strict=False)
        except ValueError:
            continue
        if net.version == ip.version and ip in net:
            return True
    return False


async def _ptr_names(ctx: _Ctx) -> tuple[list[str], bool]:
    """The first 10 PTR names of the client address (§4.6.4) and whether the lookup was void."""
    res = await ctx.resolver.query(_reverse_name(ctx.ip), "PTR")
    if res.void:
        return [], True
    if not res.ok:
        return [], False  # a DNS error in the PTR lookup: the mechanism does not match (§5.5)
    return res.targets[:MAX_PTR_NAMES], False


async def _validate(ctx: _Ctx, names: list[str]) -> list[str]:
    """Names (in order) whose A/AAAA records include the client address; lookup errors skip a name."""
    if not names:
        return []
    results = await asyncio.gather(*(ctx.resolver.query(n, ctx.addr_type) for n in names))
    bits = 32 if ctx.v4 else 128
    return [n for n, r in zip(names, results, strict=True) if r.ok and _match_any(ctx.ip, r.addresses, bits)]


async def _p_macro(ctx: _Ctx, domain: str) -> str:
    """%{p}: a validated name of the client, preferring <domain> itself, then its subdomains (§7.3)."""
    if domain in ctx._validated:
        valid = ctx._validated[domain]
    else:
        names, _ = await _ptr_names(ctx)
        valid = await _validate(ctx, names)
        ctx._validated[domain] = valid
    if not valid:
        return "unknown"
    d = domain.lower()
    for n in valid:
        if n.lower() == d:
            return n
    for n in valid:
        if n.lower().endswith("." + d):
            return n
    return valid[0]


def _reverse_name(ip: IPAddress) -> str:
    return ip.reverse_pointer


# ---------------------------------------------------------------------------
# Macros (§7)


def _ip_dotted(ip: IPAddress) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", "").upper())


async def _macro_value(ctx: _Ctx, letter: str, domain: str) -> str:
    if letter == "s":
        return ctx.sender
    if letter == "l":
        return ctx.local
    if letter == "o":
        return ctx.sender_domain
    if letter == "d":
        return domain
    if letter == "i":
        return _ip_dotted(ctx.ip)
    if letter == "p":
        return await _p_macro(ctx, domain)
    if letter == "v":
        return "in-addr" if ctx.v4 else "ip6"
    if letter == "h":
        return ctx.helo if ctx.helo is not None else "unknown"
    if letter == "c":
        return str(ctx.ip)
    if letter == "r":
        return ctx.receiver
    if letter == "t":
        return str(int(time.time()))
    raise _PermError(f"unknown macro letter {letter!r}")  # the parser already rejects these


_SPLITTERS: dict[str, re.Pattern[str]] = {}


def _transform(value: str, macro: Macro) -> str:
    delims = macro.delimiters or "."
    pat = _SPLITTERS.get(delims)
    if pat is None:
        pat = _SPLITTERS[delims] = re.compile("[" + re.escape(delims) + "]")
    parts = pat.split(value)
    if macro.reverse:
        parts.reverse()
    if macro.digits is not None and macro.digits < len(parts):
        parts = parts[len(parts) - macro.digits :]
    out = ".".join(parts)
    if macro.url_escape:
        out = urllib.parse.quote(out, safe="")
    return out


async def expand(ctx: _Ctx, tokens: tuple[MacroToken, ...], domain: str) -> str:
    out: list[str] = []
    for tok in tokens:
        if isinstance(tok, str):
            out.append(tok)
        else:
            out.append(_transform(await _macro_value(ctx, tok.letter, domain), tok))
    return "".join(out)


async def _expand_domain(ctx: _Ctx, tokens: tuple[MacroToken, ...], domain: str) -> str:
    """Expand a domain-spec; drop one trailing dot; keep it within 253 characters (§7.3)."""
    name = await expand(ctx, tokens, domain)
    if name.endswith("."):
        name = name[:-1]
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


async def _explanation(ctx: _Ctx, exp: Modifier, domain: str) -> str | None:
    """§6.2: fetch and expand the exp= text; any problem means "no explanation"."""
    try:
        target = await _expand_domain(ctx, exp.tokens, domain)
        res = await ctx.resolver.query(target, "TXT")
        if not res.ok or len(res.text_bytes) != 1:
            return None
        tokens = parse_explanation(res.text_bytes[0])
        if tokens is None:
            return None
        return await expand(ctx, tokens, domain)
    except (_PermError, _TempError):
        return None


# ---------------------------------------------------------------------------
# Report


_RESULT_TEXT: dict[str, tuple[str, str, str]] = {
    # result: (code, severity, title template)
    "pass": ("spf.pass", "ok", "SPF pass: {ip} is authorised to send for {domain}"),
    "fail": ("spf.fail", "critical", "SPF fail: {domain} says {ip} must not send its mail"),
    "softfail": ("spf.softfail", "warning", "SPF softfail: {domain} says {ip} is probably not authorised"),
    "neutral": ("spf.neutral", "warning", "SPF neutral: {domain} makes no statement about {ip}"),
    "none": ("spf.missing", "critical", "SPF none: {domain} has no SPF record"),
    "permerror": ("spf.permerror", "critical", "SPF permerror: the SPF policy of {domain} is broken"),
    "temperror": ("spf.unknown", "unknown", "SPF temperror: a DNS lookup failed while checking {domain}"),
}


def _permissive_pass(res: SPFResult) -> Finding | None:
    """A pass that came from `+all` (or a bare `all`) passes every address on the Internet:
    the result is right, and the record is the problem (the audit's spf.permissive_all)."""
    if res.result != "pass" or not res.path:
        return None
    where, _, term = res.path[-1].rpartition(": ")
    if term.lower() not in ("all", "+all"):
        return None
    where = where or res.matched_domain or res.domain
    return Finding(
        code="spf.permissive_all",
        severity="critical",
        title=f"{format_ip(res.ip)} passes only because the SPF record of {where} ends in '{term}': every host passes",
        detail=f"'{term}' gives SPF pass to mail from any IP address, so anyone can send as {res.domain} and pass "
               "SPF. Use '-all' (or '~all') after listing your senders.",
        evidence={"target": res.domain, "record": res.record or "", "value": term},
        remediation=["spf.tighten_all"],
        check="spf",
    )


def _result_finding(res: SPFResult) -> Finding:
    code, severity, title = _RESULT_TEXT[res.result]
    if res.result == "permerror" and res.problem_code:
        code = res.problem_code
    if res.result == "none" and res.problem and "not a valid domain" in res.problem:
        code, severity = "spf.none", "warning"
        title = "SPF none: {domain} is not a domain SPF can be checked for"
    ip = format_ip(res.ip)
    detail_parts: list[str] = []
    if res.mechanism:
        via = f" (path: {' → '.join(res.path)})" if len(res.path) > 1 else ""
        detail_parts.append(f"Matched term: {res.mechanism}{via}.")
    if res.problem:
        detail_parts.append(res.problem[0].upper() + res.problem[1:] + ".")
    if res.explanation:
        detail_parts.append(f"The domain's explanation: {res.explanation}")
    detail_parts.append(
        f"DNS-querying terms used: {res.lookups} of {MAX_LOOKUPS}; void lookups: {res.void_lookups} of {MAX_VOID_LOOKUPS}."
    )
    evidence: dict[str, Any] = {"target": res.domain, "host": ip, "value": res.result}
    if res.record is not None:
        evidence["record"] = res.record
    if res.mechanism:
        evidence["mechanism"] = res.mechanism
    if res.problem and res.result in ("permerror", "temperror"):
        evidence["error"] = res.problem
    if res.result == "permerror" and code == "spf.too_many_lookups":
        evidence.update(count=res.lookups, limit=MAX_LOOKUPS)
    if res.result == "permerror" and code == "spf.too_many_void_lookups":
        evidence.update(count=res.void_lookups, limit=MAX_VOID_LOOKUPS)
    remediation = {
        "spf.missing": ["spf.add_record"],
        "spf.permerror": ["spf.fix_syntax"],
        "spf.include_missing": ["spf.fix_syntax"],
        "spf.multiple_records": ["spf.merge_records"],
        "spf.too_many_lookups": ["spf.reduce_lookups"],
        "spf.too_many_void_lookups": ["spf.fix_void_lookups"],
    }.get(code, [])
    return Finding(
        code=code,
        severity=severity,  # type: ignore[arg-type]
        title=title.format(ip=ip, domain=res.domain),
        detail=" ".join(detail_parts),
        evidence=evidence,
        remediation=remediation,
        check="spf",
    )
