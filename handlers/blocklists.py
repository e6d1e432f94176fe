"""Blocklist engine: every (list, target) pair is `listed`, `clean` or `unknown`.

Rules (SPEC.md "Safety rules", issue 3):
- `unknown` on timeout, SERVFAIL/REFUSED, an answer in the operator's error
  range, an answer outside 127.0.0.0/8, an undocumented code on a list whose
  codes are all documented, or when the list fails its own RFC 5782 test points
  in this run. Never `listed` on an answer that was not a listing.
- Test points are asked once per run, concurrently with the real queries.
- One query per (list, target) per run (the Resolver's per-run cache), TXT only
  for listed targets. Concurrency is bounded by the Resolver, plus a per-list
  cap on queries in flight and queries per second.
- Allowlists and reputation lists (dnswl, Sender Score) never make a `listed`
  row: their answers are `clean` rows whose meaning carries the good news or
  the score, and `reputation.*` findings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from handlers.model import BlocklistResult, Finding, Severity, format_ip
from handlers.net import DNSResult, GroupLimit, Outcome, Resolver
from knowledge.blocklists import (
    BLOCKING_WEIGHTS,
    LOOPBACK_NET,
    WEIGHT_RANK,
    BlocklistEntry,
    BlocklistSet,
    load_blocklists,
)

CHECK = "blocklists"
ROLES = ("sending", "mx", "url", "domain")
# Sender Score thresholds for the reputation finding (Validity's own bands are
# not in our fact sheet: these are conservative reading aids, not a verdict).
SCORE_WARNING_BELOW = 70
SCORE_INFO_BELOW = 80


# --------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Target:
    text: str  # canonical text: RFC 5952 IPv6 / lower-case IDNA domain
    family: str  # ip4 / ip6 / domain
    role: str

    @property
    def is_ip(self) -> bool:
        return self.family != "domain"


def _ip_target(value: str, role: str) -> Target | None:
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return Target(str(ip), "ip4" if ip.version == 4 else "ip6", role)


def _domain_target(value: str, role: str) -> Target | None:
    name = value.strip().rstrip(".").lower()
    if not name or " " in name:
        return None
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if len(name) > 253 or any(not 0 < len(label) < 64 for label in name.split(".")):
        return None
    return Target(name, "domain", role)


def query_name(target: str, family: str, zone: str) -> str:
    """DNSBL query name: reversed octets / 32 reversed nibbles / domain, then the zone."""
    if family == "domain":
        return f"{target}.{zone}"
    return f"{_reversed_label(target)}.{zone}"


@lru_cache(maxsize=4096)
def _reversed_label(target: str) -> str:
    """'192.0.2.1' -> '1.2.0.192'; IPv6 -> 32 reversed nibbles (once per target, not per list)."""
    ip = ipaddress.ip_address(target)
    if ip.version == 6:
        # Not dns.reversename: it turns IPv4-mapped addresses (the RFC 5782
        # IPv6 test point ::ffff:7f00:2) into in-addr.arpa form.
        return ".".join(reversed(ip.exploded.replace(":", "")))
    return ".".join(reversed(str(ip).split(".")))


# -------------------------------------------------------------------- manners
# Each list gets at most `max_in_flight` queries at once and `max_qps` per second
# after a burst: a domain audit asks each list a handful of names at once and
# should not be spread out over tens of milliseconds; a bulk `mailcheck ip --file`
# run still settles at the list's rate. Enforced by Resolver.query_many.
BURST = 32


def _limit(entry: BlocklistEntry) -> GroupLimit:
    return GroupLimit(in_flight=entry.max_in_flight, qps=entry.max_qps, burst=BURST)


# -------------------------------------------------------------------- verdicts
@dataclass
class Verdict:
    status: str  # listed / clean / unknown
    codes: list[str] = field(default_factory=list)
    meaning: str = ""
    weight: str = ""  # critical / warning / info / neutral / good ('' when clean-and-absent)
    why: str = ""
    refused: bool = False  # unknown because the operator refused / rate-limited us
    score: int | None = None
    # Which kind of unknown (a key of knowledge/engine_texts.yaml without "why_"), so
    # reports can say it in the reader's language; `why` keeps the English detail.
    why_kind: str = ""


def evaluate(entry: BlocklistEntry, res: DNSResult, role: str = "sending") -> Verdict:
    """Turn one A answer for (entry, target) into a verdict. Pure; no test points."""
    if res.outcome in (Outcome.NXDOMAIN, Outcome.NODATA):
        return Verdict("clean")
    if not res.ok:
        refused = res.outcome in (Outcome.REFUSED, Outcome.SERVFAIL)
        why = res.describe()
        if refused and entry.refused_hint:
            why = f"{why}. {entry.refused_hint}"
        kind = {Outcome.TIMEOUT: "timeout", Outcome.BUDGET: "budget", Outcome.SKIPPED: "test_failed"}.get(
            res.outcome, "failed")
        if refused:
            kind = "refused_public_resolver" if entry.refused_hint else "refused"
        return Verdict("unknown", why=why, refused=refused, why_kind=kind)
    addrs = sorted(
        set(res.addresses), key=lambda a: tuple(int(x) for x in a.split(".")) if "." in a else (999,)
    )
    outside = [a for a in addrs if not _in_loopback(a)]
    if outside:
        return Verdict(
            "unknown",
            codes=addrs,
            why=(
                f"the list answered {', '.join(outside)}, outside 127.0.0.0/8: not a DNSBL answer "
                "(the zone may be parked, hijacked or wildcarded)"
            ),
            why_kind="outside_loopback",
        )
    errors = [(a, entry.error_for(a)) for a in addrs]
    errs = [(a, m) for a, m in errors if m]
    if errs:
        why = "; ".join(f"{a}: {m}" for a, m in errs)
        if entry.refused_hint:
            why = f"{why}. {entry.refused_hint}"
        return Verdict("unknown", codes=addrs, why=why, refused=True, why_kind="error_code")
    if entry.score:
        return _score_verdict(entry, addrs)
    meanings: list[str] = []
    weights: list[str] = []
    for a in addrs:
        matched = entry.match(a)
        if not matched:
            if entry.strict_codes:
                return Verdict(
                    "unknown",
                    codes=addrs,
                    why=f"the list answered {a}, a code its operator does not document; not treated as a listing",
                    why_kind="undocumented_code",
                )
            meanings.append(f"listed (return code {a})")
            weights.append(entry.default_weight)
            continue
        for rc in matched:
            meanings.append(rc.meaning)
            weights.append(rc.weight_for(role))
    blocking = [w for w in weights if w in BLOCKING_WEIGHTS]
    meaning = "; ".join(dict.fromkeys(meanings))
    if blocking:
        return Verdict(
            "listed", codes=addrs, meaning=meaning, weight=min(blocking, key=WEIGHT_RANK.__getitem__)
        )
    # Allowlist / neutral reputation answer: good news or nothing, never "listed".
    return Verdict("clean", codes=addrs, meaning=meaning, weight=min(weights, key=WEIGHT_RANK.__getitem__))


def _score_verdict(entry: BlocklistEntry, addrs: list[str]) -> Verdict:
    scores = [int(a.rsplit(".", 1)[1]) for a in addrs]
    valid = [s for s in scores if 0 <= s <= 100]
    if not valid:
        return Verdict("unknown", codes=addrs, why=f"unexpected answer {', '.join(addrs)} (a score is 0-100)",
                       why_kind="bad_score")
    score = min(valid)
    return Verdict("clean", codes=addrs, meaning=f"{entry.name}: {score}/100", weight="neutral", score=score)


def _in_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr) in LOOPBACK_NET
    except ValueError:
        return False


def test_point_failure(
    entry: BlocklistEntry,
    listed: Sequence[tuple[str, DNSResult]],
    not_listed: Sequence[tuple[str, DNSResult]],
) -> str:
    """Why the list failed its own test points in this run ('' = passed or none published).

    Each item is (test target, its A answer), e.g. ("127.0.0.2", result).
    """
    for point, res in not_listed:
        if res.ok:
            return (
                f"the list failed its RFC 5782 test: it lists the test entry that must never be listed "
                f"({point} -> {', '.join(res.addresses) or 'an answer'}); it seems to "
                "list everything (dead, parked or wildcarded zone)"
            )
        if not res.definitive:
            return f"its RFC 5782 test entry could not be checked ({res.describe()})"
    for point, res in listed:
        if not res.definitive:
            return f"its RFC 5782 test entry could not be checked ({res.describe()})"
        if not res.ok:
            return (
                f"the list failed its RFC 5782 test: the test entry {point} is not listed "
                "(the list may be empty, dead or refusing this resolver)"
            )
        bad = [a for a in res.addresses if not _in_loopback(a) or entry.error_for(a)]
        if bad:
            why = f"the list's RFC 5782 test entry answered {', '.join(bad)}"
            hint = "; ".join(m for a in bad if (m := entry.error_for(a)))
            return f"{why} ({hint})" if hint else f"{why}, outside 127.0.0.0/8"
    return ""


# ----------------------------------------------------------------------- engine
@dataclass
class _Job:
    entry: BlocklistEntry
    target: Target
    qname: str


def _select_lists(lists: BlocklistSet | Iterable[BlocklistEntry] | None) -> list[BlocklistEntry]:
    if lists is None:
        return load_blocklists().live()
    if isinstance(lists, BlocklistSet):
        return lists.live()
    dead = load_blocklists().defunct_zones
    return [e for e in lists if e.enabled and e.zone not in dead]


async def prefetch_test_points(
    resolver: Resolver,
    families: Iterable[str] = ("ip4", "ip6", "domain"),
    *,
    lists: BlocklistSet | Iterable[BlocklistEntry] | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Ask every list's RFC 5782 test entries now, into the run's cache.

    The test entries depend on nothing, so an audit asks them at its start
    instead of in the same burst as the MX addresses' queries (which must wait
    for MX -> A). check_blocklists then finds them answered or in flight.
    """
    env = os.environ if env is None else env
    names: list[str] = []
    for entry in _select_lists(lists):
        qzone = entry.query_zone(env)
        if qzone is None:
            continue
        for fam in families:
            if not entry.supports(fam):
                continue
            must, must_not = entry.points_for(fam)
            names += [query_name(p, fam, qzone) for p in (*must, *must_not)]
    await asyncio.gather(*(resolver.query(n, "A") for n in dict.fromkeys(names)))


async def check_blocklists(
    resolver: Resolver,
    ips: list[str],
    domains: list[str],
    *,
    roles: dict[str, str] | None = None,
    lists: BlocklistSet | Iterable[BlocklistEntry] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[list[BlocklistResult], list[Finding]]:
    """Check IPs on the IP lists and domains on the domain lists.

    roles: target -> "sending" | "mx" | "url" | "domain" (default: IPs are
    "sending", domains "domain"); it changes severities (PBL on an MX is info).
    Invalid targets are skipped (the caller validates user input).
    """
    env = os.environ if env is None else env
    roles = {k.strip().lower().rstrip("."): v for k, v in (roles or {}).items()}
    targets: dict[str, Target] = {}
    for raw in ips:
        t = _ip_target(raw, roles.get(raw.strip().lower(), "sending"))
        if t is not None:
            t = Target(t.text, t.family, roles.get(t.text, t.role))
            targets.setdefault(t.text, t)
    for raw in domains:
        t = _domain_target(raw, roles.get(raw.strip().lower().rstrip("."), "domain"))
        if t is not None:
            targets.setdefault(t.text, t)
    entries = _select_lists(lists)

    zones = [(e, q) for e in entries if (q := e.query_zone(env)) is not None]  # None: key not configured
    # Query groups are (zone, family): a list that fails its IPv4 test points may still
    # answer for IPv6. A list's groups share its manners.
    limits: dict[Hashable, GroupLimit] = {}
    for e, _ in zones:
        shared = _limit(e)  # one object per list: its families share one bucket (Bulk keys by object)
        for fam in ("ip4", "ip6", "domain"):
            if e.supports(fam):
                limits[(e.zone, fam)] = shared
    slot_key: dict[int, tuple[str, str]] = {}  # test point request number -> its (zone, family)
    by_zone = {e.zone: e for e in entries}
    jobs: list[_Job] = []
    # (zone, family) -> ([(point, qname) that must be listed], [(point, qname) that must not])
    tests: dict[tuple[str, str], tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
    test_slots: dict[tuple[str, str], list[int]] = {}  # their request numbers, in that order
    slot_job: list[int] = []  # request number -> job number (-1: a test point)

    def plan() -> Iterator[tuple[str, str, Hashable]]:
        """The run's queries, made as they leave: target by target across the lists (not
        list by list, so one list's caps never hold the run up), each list's RFC 5782
        test points just before its first real query (one round of queries in all)."""
        for t in targets.values():
            for entry, qzone in zones:
                if not entry.supports(t.family):
                    continue
                key = (entry.zone, t.family)
                if key not in tests:
                    ok_pts, not_pts = entry.points_for(t.family)
                    tests[key] = (
                        [(p, query_name(p, t.family, qzone)) for p in ok_pts],
                        [(p, query_name(p, t.family, qzone)) for p in not_pts],
                    )
                    test_slots[key] = []
                    for _p, q in (*tests[key][0], *tests[key][1]):
                        test_slots[key].append(len(slot_job))
                        slot_key[len(slot_job)] = key
                        slot_job.append(-1)
                        yield (q, "A", key)
                slot_job.append(len(jobs))
                jobs.append(_Job(entry, t, query_name(t.text, t.family, qzone)))
                yield (jobs[-1].qname, "A", key)

    # Verdicts are worked out as answers arrive, and a listing's TXT reason is asked
    # at once (when its list has passed its test points), so neither waits for the
    # slowest answer of the run.
    got: dict[int, DNSResult] = {}
    verdict_of: dict[int, Verdict] = {}
    result_of: dict[int, BlocklistResult] = {}
    txt_tasks: dict[int, asyncio.Task[DNSResult]] = {}
    failures: dict[tuple[str, str], str] = {}

    def test_failure(key: tuple[str, str]) -> str | None:
        """The list's test-point verdict, None while its answers are still out."""
        if key in failures:
            return failures[key]
        slots = test_slots.get(key, [])
        if any(k not in got for k in slots):
            return None
        must, must_not = tests.get(key, ([], []))
        failures[key] = test_point_failure(
            by_zone[key[0]],
            [(p, got[slots[n]]) for n, (p, _) in enumerate(must)],
            [(p, got[slots[len(must) + n]]) for n, (p, _) in enumerate(must_not)],
        )
        return failures[key]

    def ask_txt(i: int) -> None:
        job = jobs[i]
        if i not in txt_tasks and job.entry.txt and test_failure((job.entry.zone, job.target.family)) == "":
            txt_tasks[i] = asyncio.ensure_future(resolver.query(job.qname, "TXT"))

    def arrived(k: int, res: DNSResult) -> None:
        got[k] = res
        i = slot_job[k]
        if i < 0:
            key = slot_key[k]
            if key not in failures and test_failure(key):
                # Failed its own test: every row of it will be unknown whatever it answers,
                # so it gets none of the run's remaining queries (manners, and time).
                resolver.skip_group(key, failures[key])
            return
        v = evaluate(jobs[i].entry, res, jobs[i].target.role)
        verdict_of[i] = v
        result_of[i] = _result(jobs[i], v)  # built now, while other answers are still out
        if v.status == "listed":
            ask_txt(i)

    try:
        answered = await resolver.query_many(plan(), limits, on_result=arrived)
    except BaseException:
        for task in txt_tasks.values():
            task.cancel()
        raise
    for k, res in enumerate(answered):  # defensive: any answer the hook did not see
        if k not in got:
            arrived(k, res)
    for key in tests:
        test_failure(key)

    # A list that failed its own test points makes its rows unknown.
    if any(failures.values()):
        for i, job in enumerate(jobs):
            fail = failures.get((job.entry.zone, job.target.family), "")
            v = verdict_of[i]
            if fail and v.status != "unknown":
                verdict_of[i] = Verdict("unknown", codes=v.codes, why=fail, why_kind="test_failed")
                result_of[i] = _result(job, verdict_of[i])
    verdicts = [verdict_of[i] for i in range(len(jobs))]
    for i, v in enumerate(verdicts):
        if v.status == "listed":
            ask_txt(i)  # lists whose test points answered after the listing
    if txt_tasks:
        txt_done = await asyncio.gather(*txt_tasks.values())
        for i, r in zip(txt_tasks, txt_done, strict=True):
            if r.ok and verdicts[i].status == "listed":
                result_of[i].reason_text = " ".join(r.texts)[:500]
    rows = [result_of[i] for i in range(len(jobs))]
    findings = build_findings(jobs, verdicts, rows)
    return rows, findings


def _result(job: _Job, v: Verdict) -> BlocklistResult:
    e = job.entry
    listed = v.status == "listed"
    unknown = v.status == "unknown"
    return BlocklistResult(
        e.zone,
        job.target.text,
        v.status,  # type: ignore[arg-type]
        list(v.codes),
        "" if unknown else v.meaning,
        (e.delist.url or "") if listed else "",
        e.name,
        job.target.family,
        "",
        v.why if unknown else "",
        e.informational or e.purpose != "block",
        v.why_kind if unknown else "",
    )


# --------------------------------------------------------------------- findings
def _sev(weight: str) -> Severity:
    return {"critical": "critical", "warning": "warning"}.get(weight, "info")  # type: ignore[return-value]


def build_findings(
    jobs: Sequence[_Job], verdicts: Sequence[Verdict], results: Sequence[BlocklistResult]
) -> list[Finding]:
    findings: list[Finding] = []
    per_target: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        per_target.setdefault(job.target.text, []).append(i)
    for target, idxs in per_target.items():
        shown = format_ip(target)
        is_ip = jobs[idxs[0]].target.is_ip
        role = jobs[idxs[0]].target.role
        base_ev: dict[str, Any] = {"target": shown, "ip": shown if is_ip else None, "role": role}
        listed = [i for i in idxs if verdicts[i].status == "listed"]
        unknown = [i for i in idxs if verdicts[i].status == "unknown"]
        clean = [i for i in idxs if verdicts[i].status == "clean"]
        for i in sorted(listed, key=lambda k: WEIGHT_RANK[verdicts[k].weight]):
            findings.append(_listed_finding(jobs[i], verdicts[i], results[i], base_ev))
        if unknown:
            findings.append(_unknown_finding(shown, [(jobs[i], verdicts[i]) for i in unknown], base_ev))
        block_clean = [i for i in clean if jobs[i].entry.purpose == "block"]
        if not listed and block_clean:
            findings.append(
                Finding(
                    code="blocklist.clean",
                    severity="ok",
                    title=f"{shown} is not listed on any of the {len(block_clean)} blocklists that answered",
                    detail=(
                        f"{len(unknown)} more could not be checked (see the unknown rows)." if unknown else ""
                    ),
                    evidence={
                        **base_ev,
                        "zone": "",
                        "codes": [],
                        "meaning": "",
                        "answered": len(block_clean),
                    },
                    check=CHECK,
                )
            )
        for i in clean:
            e, v = jobs[i].entry, verdicts[i]
            if e.purpose == "allow" and v.codes:
                findings.append(
                    Finding(
                        code="reputation.allowlisted",
                        severity="ok",
                        title=f"{shown} is on the {e.name} allowlist",
                        detail=f"{v.meaning}. Being on an allowlist is good news; nothing to fix.",
                        evidence={**base_ev, "zone": e.zone, "codes": v.codes, "meaning": v.meaning},
                        check=CHECK,
                    )
                )
            elif e.score and v.score is not None:
                findings.append(_score_finding(shown, e, v, base_ev))
            elif e.purpose == "reputation" and v.codes and v.weight == "good":
                findings.append(
                    Finding(
                        code="reputation.good",
                        severity="ok",
                        title=f"{shown}: {v.meaning} ({e.zone})",
                        evidence={**base_ev, "zone": e.zone, "codes": v.codes, "meaning": v.meaning},
                        check=CHECK,
                    )
                )
    return findings


def _listed_finding(job: _Job, v: Verdict, r: BlocklistResult, base_ev: dict[str, Any]) -> Finding:
    e = job.entry
    shown = base_ev["target"]
    parts = [f"{e.name} ({e.zone}) returned {', '.join(v.codes)}: {v.meaning}."]
    if r.reason_text:
        parts.append(f"The list says: {r.reason_text}")
    if e.informational:
        parts.append("This list is informational: it lists whole networks or is rarely used to reject mail.")
    if job.target.role == "mx" and v.weight == "info":
        parts.append("The target is a receiving MX; this kind of listing matters only if it also sends mail.")
    delist = e.delist
    if delist.how:
        parts.append(f"Delisting ({delist.procedure}): {delist.how}")
    if delist.url:
        parts.append(f"Delist / lookup: {delist.url}")
    return Finding(
        code="blocklist.listed",
        severity=_sev(v.weight),
        title=f"{shown} is listed on {e.name} ({e.zone})",
        detail=" ".join(parts),
        evidence={
            **base_ev,
            "zone": e.zone,
            "list": e.name,
            "codes": list(v.codes),
            "meaning": v.meaning,
            "txt": r.reason_text,
            "delist_url": delist.url or "",
            "delist_procedure": delist.procedure,
            "informational": e.informational,
        },
        remediation=["blocklist.delist"],
        check=CHECK,
    )


def _unknown_finding(shown: str, items: list[tuple[_Job, Verdict]], base_ev: dict[str, Any]) -> Finding:
    refused = any(v.refused for _, v in items)
    lines = [f"{j.entry.zone}: {v.why}" for j, v in items]
    zones = [j.entry.zone for j, _ in items]
    n = len(items)
    return Finding(
        code="blocklist.unknown",
        severity="unknown",
        title=f"{shown}: {n} blocklist{'s' if n != 1 else ''} could not be checked",
        detail="Not a listing - these lists gave no usable answer:\n" + "\n".join(lines),
        evidence={
            **base_ev,
            "zone": ", ".join(zones),
            "codes": sorted({c for _, v in items for c in v.codes}),
            "meaning": "",
            "lists": [{"zone": j.entry.zone, "why": v.why, "codes": v.codes} for j, v in items],
        },
        remediation=["blocklist.resolver_refused"] if refused else [],
        check=CHECK,
    )


def _score_finding(shown: str, e: BlocklistEntry, v: Verdict, base_ev: dict[str, Any]) -> Finding:
    score = v.score if v.score is not None else 0
    sev: Severity = "warning" if score < SCORE_WARNING_BELOW else "info" if score < SCORE_INFO_BELOW else "ok"
    return Finding(
        code="reputation.senderscore",
        severity=sev,
        title=f"{shown}: Sender Score {score}/100",
        detail=(
            "Validity's Sender Score rates the IP 0-100 over the last 30 days; a low score usually means "
            "complaints, spam-trap hits or many unknown recipients."
        ),
        evidence={**base_ev, "zone": e.zone, "codes": v.codes, "meaning": v.meaning, "score": score, "value": score},
        check=CHECK,
    )
