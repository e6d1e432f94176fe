"""The receiver-reports part of a watched domain's digest: state and changes.

Pure code (no database, no Slack). The digest (bot/digest.py) reads the stored
reports of a watched domain whose period ended in the last `WINDOW_DAYS`, sums
them with `reports_state`, keeps the state in the target's snapshot, and on the
next run `reports_changes(previous_state, state)` says what changed: the DMARC
pass rate moving by at least `RATE_STEP` points, sources that newly fail DMARC,
TLS failure result types not seen before. A domain's first state (no previous
snapshot, or a snapshot from before reports were stored) is a baseline: nothing
is said as a change.

`dmarc_pass` counts messages whose policy-evaluated DKIM or SPF passed (RFC 7489
section 6.6.2 / the SPEC's JSON): a source's failed messages are its messages
minus those.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.digest_diff import Change, _change
from knowledge.digest_texts import digest_text

WINDOW_DAYS = 7
RATE_STEP = 1.0  # percentage points: smaller moves are day-to-day noise
MAX_FAILING = 50  # failing sources kept in a snapshot (the largest)
MAX_NEW_SHOWN = 5


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _failed_messages(source: dict[str, Any]) -> int:
    messages = _int(source.get("messages"))
    if "dmarc_pass" in source:
        return max(0, messages - _int(source.get("dmarc_pass")))
    return messages if str(source.get("dmarc") or "").lower() == "fail" else 0


def reports_state(reports: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Totals of one domain's stored reports (their `to_dict()` shape); None without any."""
    n_agg = n_tls = 0
    messages = passed = tls_ok = tls_failed = 0
    failing: dict[str, int] = {}
    results: dict[str, int] = {}
    for r in reports:
        if not isinstance(r, dict):
            continue
        if r.get("type") == "dmarc-aggregate":
            n_agg += 1
            messages += _int(r.get("messages"))
            passed += _int(r.get("dmarc_pass"))
            for s in r.get("sources") or []:
                if isinstance(s, dict) and s.get("ip"):
                    failed = _failed_messages(s)
                    if failed:
                        failing[str(s["ip"])] = failing.get(str(s["ip"]), 0) + failed
        elif r.get("type") == "tls-rpt":
            n_tls += 1
            tls_ok += _int(r.get("successful_sessions"))
            tls_failed += _int(r.get("failed_sessions"))
            for f in r.get("failures") or []:
                if isinstance(f, dict) and f.get("result_type"):
                    rt = str(f["result_type"])[:64]
                    results[rt] = results.get(rt, 0) + _int(f.get("sessions"))
    if not n_agg and not n_tls:
        return None
    top = dict(sorted(failing.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FAILING])
    return {"aggregate_reports": n_agg, "messages": messages, "dmarc_pass": passed, "failing": top,
            "tls_reports": n_tls, "tls_ok": tls_ok, "tls_failed": tls_failed, "tls_results": results}


def pass_rate(state: dict[str, Any]) -> float | None:
    messages = _int(state.get("messages"))
    return None if not messages else 100.0 * min(_int(state.get("dmarc_pass")), messages) / messages


def _pct(rate: float) -> str:
    return f"{rate:.1f}"


def reports_changes(old: dict[str, Any] | None, new: dict[str, Any] | None, subject: str) -> list[Change]:
    """What changed in a domain's reports since the last digest ([] on a baseline)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    out: list[Change] = []
    before, after = pass_rate(old), pass_rate(new)
    if before is not None and after is not None and abs(after - before) >= RATE_STEP:
        down = after < before
        out.append(_change(subject, "reports_pass_rate", "warning" if down else "ok",
                           "reports_pass_rate_down" if down else "reports_pass_rate_up",
                           {"rate": _pct(after), "old": _pct(before)}))
    old_failing: dict[str, Any] = old["failing"] if isinstance(old.get("failing"), dict) else {}
    new_failing = [(ip, n) for ip, n in (new.get("failing") or {}).items() if ip not in old_failing]
    for ip, n in new_failing[:MAX_NEW_SHOWN]:
        out.append(_change(subject, "reports_new_failing_source", "warning", "reports_new_failing_source",
                           {"ip": ip, "messages": _int(n)}))
    if len(new_failing) > MAX_NEW_SHOWN:
        out.append(_change(subject, "reports_new_failing_source", "warning", "reports_more_new_failing",
                           {"n": len(new_failing) - MAX_NEW_SHOWN}))
    old_results: dict[str, Any] = old["tls_results"] if isinstance(old.get("tls_results"), dict) else {}
    fresh = sorted(rt for rt in (new.get("tls_results") or {}) if rt not in old_results)
    if fresh and _int(new.get("tls_failed")):
        out.append(_change(subject, "reports_tls_failures", "warning", "reports_tls_failures",
                           {"sessions": _int(new.get("tls_failed")), "results": ", ".join(fresh[:5])}))
    return out


def reports_status_line(state: dict[str, Any], lang: str = "en") -> str:
    """One line: pass rate, failing sources, TLS sessions (for the digest's reports section)."""
    parts: list[str] = []
    rate = pass_rate(state)
    if rate is not None:
        parts.append(digest_text("reports_status_dmarc", lang, rate=_pct(rate), messages=_int(state.get("messages"))))
        n_failing = len(state.get("failing") or {})
        if n_failing:
            parts.append(digest_text("reports_status_failing", lang, n=n_failing))
    total = _int(state.get("tls_ok")) + _int(state.get("tls_failed"))
    if total:
        if _int(state.get("tls_failed")):
            parts.append(digest_text("reports_status_tls", lang, failed=_int(state.get("tls_failed")), total=total))
        else:
            parts.append(digest_text("reports_status_tls_ok", lang, total=total))
    if not parts:
        parts.append(digest_text("reports_status_empty", lang))
    return digest_text("list_sep", lang).join(parts)


MAX_REPORTED_SELECTORS = 10


def selectors_seen(reports: Iterable[dict[str, Any]], domain: str) -> list[str]:
    """DKIM selectors the receivers saw signing for `domain` itself (d= the domain), most
    mail first: the audit checks their keys too, since DNS can't list selectors and the
    common-name guesses miss custom ones (RFC 6376 §3.1)."""
    from handlers.inputs import InputError, normalize_selector

    domain = domain.lower().rstrip(".")
    counts: dict[str, int] = {}
    for rep in reports:
        for src in rep.get("sources") or []:
            for sig in src.get("dkim") or []:
                if str(sig.get("domain") or "").lower().rstrip(".") != domain:
                    continue
                try:
                    sel = normalize_selector(str(sig.get("selector") or ""))
                except InputError:
                    continue
                if sel:
                    counts[sel] = counts.get(sel, 0) + _int(sig.get("messages")) + 1
    return sorted(counts, key=lambda s: -counts[s])[:MAX_REPORTED_SELECTORS]
