"""Findings (codes ``logs.*``) from a whole log's tally. Texts: knowledge/findings.yaml."""

from __future__ import annotations

from typing import Any

from handlers.findings import finding
from handlers.model import Finding, Severity

from .tally import ProviderStats, Tally
from .timeparse import iso

# Reasons that mean "this sending IP was refused", as opposed to the mailbox or the message.
_IP_REFUSALS = frozenset({"blocked", "requireptr", "authfailure", "badreputation", "rejected", "norelaying",
                          "securityerror", "spamdetected", "policyviolation"})  # fmt: skip
_JUMP_MIN_ATTEMPTS = 5  # attempts in an hour before its rate means anything
_JUMP_RATE = 0.2  # share of attempts deferred (or bounced) that counts as a bad hour


def _f(code: str, severity: Severity, evidence: dict[str, Any], remediation: list[str] | None = None) -> Finding:
    import knowledge

    title, detail = knowledge.localize_finding(code, "en", evidence, code, "")
    return finding(code, severity, title, detail, evidence=evidence, remediation=remediation, check="logs")


def build(t: Tally) -> list[Finding]:
    out: list[Finding] = []
    out += _ipv6(t)
    out += jumps(t)
    out += _destinations(t)
    out += _sender_ips(t)
    if t.microsoft_consumer:
        domains = ", ".join(d for d, _ in t.microsoft_consumer.most_common(5))
        out.append(_f("logs.microsoft_accepted", "info",
                      {"count": sum(t.microsoft_consumer.values()), "target": domains},
                      ["provider.microsoft.consumer_silent_drop", "provider.microsoft.snds_jmrp"]))
    return out


def _ipv6(t: Tally) -> list[Finding]:
    out: list[Finding] = []
    for key, ps in t.providers.items():
        v4_ok = ps.family[4][0]
        v6_ok = ps.family[6][0]
        refused = sum(n for r, n in ps.family_reasons[6].items() if r in _IP_REFUSALS)
        v4_refused = sum(n for r, n in ps.family_reasons[4].items() if r in _IP_REFUSALS)
        if refused and v4_ok and refused > v6_ok and v4_refused * 4 < v4_ok:
            reason = ps.family_reasons[6].most_common(1)[0][0]
            rem = ["postfix.ipv4_only_smtp", "ptr.set_reverse_dns"]
            if key == "google":
                rem.insert(0, "provider.google.not_authorized")
            out.append(_f("logs.ipv6_refused", "critical",
                          {"provider": key, "count": refused, "value": v4_ok, "reason": reason,
                           "ip": _v6_sender(ps)}, rem))
    return out


def _v6_sender(ps: ProviderStats) -> str:
    for ip, _ in ps.sender_ips.most_common():
        if ":" in ip:
            return ip
    return ""


def jumps(t: Tally) -> list[Finding]:
    """A provider whose deferral rate or bounce rate jumps: the first hour with enough
    attempts where that rate is at least _JUMP_RATE and at least twice its rate before.
    Deferrals and bounces are judged apart, so a steady share of bounces (dead addresses)
    does not hide a provider that starts rate limiting."""
    out: list[Finding] = []
    by_provider: dict[str, list[tuple[int, list[int]]]] = {}
    for hour, rows in t.hours.items():
        for key, row in rows.items():
            by_provider.setdefault(key, []).append((hour, row))
    for key, series in by_provider.items():
        if key in ("local", "content-filter", "other"):
            continue
        series.sort()
        found = [j for j in (_first_jump(series, 1), _first_jump(series, 2)) if j is not None]
        if not found:
            continue
        hour, rate, before, bad = min(found)
        reasons = t.hour_reasons.get((hour, key))
        reason = reasons.most_common(1)[0][0] if reasons else ""
        out.append(_f("logs.rate_jump", "warning", {
            "provider": key, "when": iso(hour * 3600.0), "rate": f"{rate}%", "value": f"{before}%",
            "reason": reason, "count": bad,
        }, _remediation_for(t.providers.get(key), reason)))
    return out


def _first_jump(series: list[tuple[int, list[int]]], col: int) -> tuple[int, int, int, int] | None:
    """(hour, rate %, rate % before, count) of the first jump in column ``col`` (1 deferred, 2 bounced)."""
    base_n = base_bad = 0
    for hour, row in series:
        n = row[0] + row[1] + row[2]
        bad = row[col]
        if (n >= _JUMP_MIN_ATTEMPTS and bad >= _JUMP_RATE * n and base_n >= _JUMP_MIN_ATTEMPTS
                and base_bad * n * 2 <= bad * base_n):
            return hour, 100 * bad // n, 100 * base_bad // base_n, bad
        base_n += n
        base_bad += bad
    return None


def _remediation_for(ps: ProviderStats | None, reason: str) -> list[str]:
    if ps is None:
        return []
    return list(ps.remediation.get(reason, ()))


def _destinations(t: Tally) -> list[Finding]:
    out: list[Finding] = []
    for dest, n in t.tls_failures.most_common(5):
        out.append(_f("logs.tls_failure", "warning",
                      {"target": dest, "count": n, "error": t.tls_examples.get(dest, "")[:200]}))
    for dest, n in t.not_found.most_common(5):
        out.append(_f("logs.host_not_found", "warning", {"target": dest, "count": n}, ["mx.publish"]))
    ranked = sorted(t.connect_failures.items(), key=lambda kv: -sum(kv[1].values()))
    for (host, ip), errors in ranked[:5]:
        n = sum(errors.values())
        if n < 2:
            break
        out.append(_f("logs.connect_failure", "warning",
                      {"host": host, "ip": ip, "count": n, "error": errors.most_common(1)[0][0]}))
    return out


def _sender_ips(t: Tally) -> list[Finding]:
    seen: dict[str, tuple[int, str]] = {}
    for key, ps in t.providers.items():
        for ip, n in ps.sender_ips.items():
            total, who = seen.get(ip, (0, key))
            seen[ip] = (total + n, who)
    out: list[Finding] = []
    for ip, (n, who) in sorted(seen.items(), key=lambda kv: -kv[1][0])[:3]:
        out.append(_f("logs.sender_ip", "info", {"ip": ip, "provider": who, "count": n}))
    return out
