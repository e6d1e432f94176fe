"""`mailcheck message`: why did a delivered message land in the spam folder?

Flow (the event loop never does CPU work; DNS only, the bot connects nowhere):
1. thread: parse the message, the Received path, every (ARC-)Authentication-Results,
   the content signals and the DKIM/ARC signatures (dkimpy's own parse);
2. async, concurrently and within a time budget: DKIM/ARC keys, the From
   domain's DMARC record, our SPF check_host of the sending IP, PTR/FCrDNS of
   the sending IP and blocklists (sending IP, From domain, URL domains);
3. thread: DKIM and ARC verification with the fetched keys;
4. alignment, findings, and a verdict ranking the likely causes.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.findings import finding
from handlers.model import BlocklistResult, Finding, Report
from handlers.net import Resolver

from .authresults import PASSING, AuthResults, parse_authres, receiver_name
from .content import (
    attachment_findings,
    body_findings,
    bulk_signals,
    header_findings,
    list_unsubscribe_findings,
    subject_findings,
)
from .dkimcheck import (
    ArcResult,
    SignatureSet,
    SigResult,
    fetch_keys,
    read_signatures,
    verify_arc,
    verify_signatures,
)
from .parse import ParsedMessage, parse_message
from .received import Path, analyse_path, is_internal

CHECK = "message"
LIVE_BUDGET_S = 8.0  # SPEC: any paste answered within 10 s
MAX_AUTHRES = 10
MAX_URL_DOMAINS = 20
ALLOWED_REMEDIATION = {
    "message.fix_authentication", "message.dkim_fix_signature", "message.align_domains",
    "message.add_one_click_unsubscribe", "message.body_content", "message.subject_content",
    "message.attachment_names", "message.url_reputation", "message.fix_headers", "dkim.publish_key",
    "spf.add_record", "dmarc.publish", "ptr.set_reverse_dns", "blocklist.delist",
}  # fmt: skip
# Domains whose links say nothing about the sender (never worth a blocklist query).
_BENIGN_URL_ORGS = {"w3.org", "schemas.microsoft.com", "purl.org", "xmlsoap.org", "openxmlformats.org"}


@dataclass
class Static:
    """Everything the first (sync) phase produces."""

    pm: ParsedMessage
    path: Path
    authres: list[AuthResults]
    arc_authres: list[AuthResults]
    sigset: SignatureSet
    content: list[Finding]
    from_addr: str
    from_domain: str
    mailfrom: str
    mailfrom_domain: str
    helo: str
    url_domains: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
def _addr_domain(addr: str) -> str:
    dom = addr.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()
    try:
        return dom.encode("idna").decode("ascii") if dom and not dom.isascii() else dom
    except UnicodeError:
        return dom


def _first_address(value: str | None) -> str:
    if not value:
        return ""
    try:
        pairs = email.utils.getaddresses([value[:2000]])
    except Exception:
        return ""
    for _, a in pairs:
        if "@" in a:
            return a.strip()
    return ""


def _static_phase(data: bytes | str) -> Static:
    from handlers.dmarc import org_domain

    pm = parse_message(data)
    path = analyse_path(pm.all("Received"))
    authres = [parse_authres(v, "Authentication-Results", i) for i, v in enumerate(pm.all("Authentication-Results")[:MAX_AUTHRES])]
    arc_ar = [parse_authres(v, "ARC-Authentication-Results", i)
              for i, v in enumerate(pm.all("ARC-Authentication-Results")[:MAX_AUTHRES])]  # fmt: skip
    sigset = read_signatures(pm.raw) if pm.has("DKIM-Signature") or pm.has("ARC-Seal") else SignatureSet([], [], 0)
    content: list[Finding] = []
    content += header_findings(pm)
    content += subject_findings(pm)
    content += body_findings(pm)
    content += attachment_findings(pm)
    from_addr = _first_address(pm.decoded("From"))
    from_domain = _addr_domain(from_addr) if from_addr else ""
    # Envelope sender: the receiver's own record first (A-R smtp.mailfrom), then Return-Path.
    mailfrom = ""
    for ar in authres:
        for r in ar.get("spf"):
            mf = r.prop("smtp.mailfrom")
            if mf:
                mailfrom = mf
                break
        if mailfrom:
            break
    if not mailfrom:
        mailfrom = _first_address(pm.first("Return-Path")) or (pm.first("Return-Path") or "").strip().strip("<>")
    mailfrom_domain = _addr_domain(mailfrom) if mailfrom else ""
    helo = path.sending_hop.from_helo if path.sending_hop else ""
    url_domains: list[str] = []
    for host in pm.url_hosts:
        org = org_domain(host)
        if org and org not in url_domains and org not in _BENIGN_URL_ORGS and "." in org:
            url_domains.append(org)
        if len(url_domains) >= MAX_URL_DOMAINS:
            break
    return Static(pm, path, authres, arc_ar, sigset, content, from_addr, from_domain, mailfrom, mailfrom_domain,
                  helo, url_domains)  # fmt: skip


# ---------------------------------------------------------------------------
async def diagnose_message(
    data: bytes | str, resolver: Resolver | None, *, live: bool = True, lang: str = "en"
) -> Report:
    """Diagnose a delivered message (headers + body). Never raises on any input."""
    t0 = time.monotonic()
    report = Report(kind="message", subject="(message)", lang=lang)
    try:
        st = await asyncio.to_thread(_static_phase, data if data is not None else b"")
    except Exception as exc:  # the parsers are defensive; this keeps the promise anyway
        report.findings.append(
            finding("message.unreadable", "unknown", "The message could not be read",
                    f"{type(exc).__name__}: the text does not parse as a message. Paste the full source "
                    "(headers and body) as your mail client shows it.",
                    evidence={"error": type(exc).__name__}, check=CHECK)
        )
        report.duration_ms = int((time.monotonic() - t0) * 1000)
        return report
    pm = st.pm
    report.subject = (pm.decoded("Subject") or "").strip()[:200] or st.from_addr or "(message without subject)"
    report.notes.extend(pm.notes)
    if pm.defects:
        report.notes.append("Parser notes: " + "; ".join(pm.defects[:3]))
    use_dns = live and resolver is not None
    dns = resolver if use_dns else None

    # -- phase 2: DNS, all at once, within a budget --------------------------------
    key_names = [s.key_name for s in st.sigset.dkim if s.key_name] + st.sigset.arc_keys
    tasks: dict[str, asyncio.Task[Any]] = {}
    tasks["keys"] = asyncio.ensure_future(fetch_keys(dns, key_names))
    if dns is not None:
        if st.from_domain:
            tasks["dmarc"] = asyncio.ensure_future(_dmarc(dns, st.from_domain))
        sip = st.path.sending_ip
        if sip:
            tasks["ptr"] = asyncio.ensure_future(_ptr(dns, sip))
            dom = st.mailfrom_domain
            if dom and not _receiver_has(st.authres, "spf"):
                tasks["spf"] = asyncio.ensure_future(_spf(dns, sip, dom, st.mailfrom, st.helo))
        domains = [d for d in [st.from_domain, *st.url_domains] if d]
        if sip or domains:
            roles = {d: "url" for d in st.url_domains}
            if st.from_domain:
                roles[st.from_domain] = "domain"
            if sip:
                roles[sip] = "sending"
            tasks["bl"] = asyncio.ensure_future(_blocklists(dns, [sip] if sip else [], list(dict.fromkeys(domains)), roles))
    results = await _gather_within(tasks, LIVE_BUDGET_S)
    timed_out = [k for k, v in results.items() if isinstance(v, _TimedOut)]

    # -- phase 3: verification (thread) ---------------------------------------------
    keys = results.get("keys")
    if not isinstance(keys, dict):
        keys = dict.fromkeys(key_names)
    sig_results: list[SigResult] = []
    arc: ArcResult | None = None
    if st.sigset.dkim or st.sigset.arc_instances:
        sig_results, arc = await asyncio.to_thread(_verify_phase, pm.raw, st.sigset, keys, st.path.arrived_at)

    # -- findings -------------------------------------------------------------------
    report.findings.extend(_authres_findings(st))
    report.findings.extend(_dkim_findings(st, sig_results, use_dns))
    dmarc_info = results.get("dmarc") if isinstance(results.get("dmarc"), tuple) else None
    spf_res = results.get("spf") if not isinstance(results.get("spf"), _TimedOut) else None
    report.findings.extend(_alignment_findings(st, sig_results, dmarc_info, spf_res, use_dns))
    if spf_res is not None:
        report.spf = spf_res.to_dict()
        report.findings.extend(_our_spf_findings(st, spf_res))
    if arc is not None or st.arc_authres:
        report.findings.append(_arc_finding(st, arc))
    report.findings.append(_path_finding(st))
    ptr = results.get("ptr")
    if isinstance(ptr, tuple):
        report.findings.extend(ptr[0])
        names = ptr[1].get("ptr") if isinstance(ptr[1], dict) else None
        if names:
            for f in report.findings:
                if f.code == "message.path":
                    f.evidence["ptr"] = ", ".join(map(str, names)) if isinstance(names, list) else str(names)
    bl = results.get("bl")
    if isinstance(bl, tuple):
        rows, bl_findings = bl
        report.blocklists.extend(rows)
        report.findings.extend(_blocklist_findings(st, rows, bl_findings))
    # Headers covered by a signature that holds: valid here, or failing here on a copy while
    # the receiver recorded dkim=pass for its domain (a paste or mail client alters the copy,
    # not what the receiver judged; RFC 8058's DKIM coverage is then met).
    receiver_ok = _receiver_dkim_pass(st)
    dkim_signed = {h for r in sig_results
                   if r.status == "valid" or (r.status != "unknown" and (r.sig.domain or "").lower() in receiver_ok)
                   for h in r.sig.signed_headers}
    report.findings.extend(st.content)
    signals = bulk_signals(pm)
    if signals:
        report.findings.append(
            finding("message.bulk_headers", "info", "The message looks like bulk or list mail",
                    "Indicators: " + ", ".join(signals) + ". Bulk-sender rules (one-click unsubscribe, DMARC, "
                    "alignment) apply.", evidence={"value": ", ".join(signals), "count": len(signals)}, check=CHECK)
        )
    report.findings.extend(list_unsubscribe_findings(pm, dkim_signed, bool(sig_results) and use_dns))
    for k in timed_out:
        report.findings.append(
            finding("message.live_timeout", "unknown", f"Live check “{k}” did not finish in time",
                    f"The {_TASK_NAMES.get(k, k)} took longer than {LIVE_BUDGET_S:.0f} s and was stopped; "
                    "nothing is concluded from it.", evidence={"target": k, "error": "timeout"}, check=CHECK)
        )
    if not use_dns:
        report.notes.append("Offline run: DKIM keys, DMARC, PTR and blocklists were not looked up.")
    report.findings.append(_verdict(report.findings))
    for f in report.findings:
        if f.check.startswith("message") or f.code.startswith("message."):
            f.remediation = [r for r in f.remediation if r in ALLOWED_REMEDIATION]
    report.details = _details(st, sig_results, arc, dmarc_info, spf_res)
    if resolver is not None and use_dns:
        report.dns_stats = resolver.stats.as_dict()
    report.duration_ms = int((time.monotonic() - t0) * 1000)
    return report


_TASK_NAMES = {"keys": "DKIM key lookup", "dmarc": "DMARC lookup", "ptr": "reverse DNS check",
               "spf": "SPF check", "bl": "blocklist check"}  # fmt: skip


class _TimedOut:
    pass


async def _gather_within(tasks: dict[str, asyncio.Task[Any]], budget: float) -> dict[str, Any]:
    if not tasks:
        return {}
    _done, pending = await asyncio.wait(set(tasks.values()), timeout=budget)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    out: dict[str, Any] = {}
    for k, t in tasks.items():
        if t in pending or t.cancelled():
            out[k] = _TimedOut()
        elif t.exception() is not None:
            out[k] = None
        else:
            out[k] = t.result()
    return out


def _verify_phase(
    raw: bytes, sigset: SignatureSet, keys: dict[str, Any], arrived_at: datetime | None
) -> tuple[list[SigResult], ArcResult | None]:
    sig_results = verify_signatures(raw, sigset, keys, arrived_at)
    arc = verify_arc(raw, keys) if sigset.arc_instances else None
    return sig_results, arc


async def _dmarc(resolver: Resolver, domain: str) -> tuple[Any, Any, Any]:
    from handlers.dmarc import find_dmarc

    return await find_dmarc(resolver, domain)


async def _ptr(resolver: Resolver, ip: str) -> tuple[list[Finding], dict[str, Any]]:
    from handlers.ptr import check_ptr

    return await check_ptr(resolver, ip, role="sending")


async def _spf(resolver: Resolver, ip: str, domain: str, sender: str, helo: str) -> Any:
    from handlers.spf.evaluate import check_host

    return await check_host(resolver, ip, domain, sender, helo or None)


async def _blocklists(
    resolver: Resolver, ips: list[str], domains: list[str], roles: dict[str, str]
) -> tuple[list[BlocklistResult], list[Finding]]:
    from handlers.blocklists import check_blocklists

    return await check_blocklists(resolver, ips, domains, roles=roles)


def _receiver_has(authres: list[AuthResults], method: str) -> bool:
    return any(r.result for ar in authres for r in ar.get(method))


# ---------------------------------------------------------------------------
_FAIL = {
    "spf": {"fail", "softfail", "permerror", "temperror", "none", "neutral"},
    "dkim": {"fail", "permerror", "temperror", "policy", "neutral", "none"},
    "dmarc": {"fail", "permerror", "temperror", "none"},
}
_EXPLAIN = {
    ("spf", "fail"): "the sending IP is not allowed by the envelope sender domain's SPF record (-all)",
    ("spf", "softfail"): "the sending IP is not in the envelope sender domain's SPF record (~all)",
    ("spf", "permerror"): "the SPF record is broken (syntax error or too many DNS lookups)",
    ("spf", "temperror"): "the receiver could not read the SPF record (temporary DNS error)",
    ("spf", "none"): "the envelope sender domain publishes no SPF record",
    ("spf", "neutral"): "the SPF record says nothing about this IP (?all)",
    ("dkim", "fail"): "the DKIM signature did not verify (message changed after signing, or wrong key)",
    ("dkim", "permerror"): "the DKIM signature or key is broken",
    ("dkim", "temperror"): "the receiver could not fetch the DKIM key (temporary DNS error)",
    ("dkim", "policy"): "the signature was rejected by the receiver's policy (e.g. too weak a key or sha1)",
    ("dkim", "neutral"): "the signature could not be evaluated",
    ("dkim", "none"): "the message is not DKIM-signed",
    ("dmarc", "fail"): "neither SPF nor DKIM passed for a domain aligned with the From domain",
    ("dmarc", "permerror"): "the From domain's DMARC record is broken",
    ("dmarc", "temperror"): "the receiver could not read the DMARC record (temporary DNS error)",
    ("dmarc", "none"): "the From domain publishes no DMARC record",
}


def _authres_findings(st: Static) -> list[Finding]:
    out: list[Finding] = []
    for ar in st.authres:
        methods = {r.method: r for r in ar.results if r.method in ("spf", "dkim", "dmarc")}
        dkim_all = ar.get("dkim")
        dmarc_pass = any(r.result in PASSING for r in ar.get("dmarc"))
        dkim_pass = any(r.result in PASSING for r in dkim_all)
        spf_pass = any(r.result in PASSING for r in ar.get("spf"))
        unauthenticated = not dkim_pass and not spf_pass
        host = receiver_name(ar)
        seen: set[tuple[str, str]] = set()
        for r in ar.results:
            if r.method not in _FAIL or r.result not in _FAIL[r.method]:
                continue
            if r.method == "dkim" and dkim_pass:
                continue  # another signature passed: a broken extra signature is not a cause
            if r.method == "dkim" and r.result == "none" and not st.sigset.dkim and not dmarc_pass:
                pass  # reported below as well (dkim_missing); keep the receiver's view
            elif r.method == "dkim" and r.result == "none":
                continue
            if (r.method, r.result) in seen:
                continue
            seen.add((r.method, r.result))
            target = {
                "spf": r.prop("smtp.mailfrom", "smtp.helo"),
                "dkim": r.prop("header.d", "header.i"),
                "dmarc": r.prop("header.from"),
            }[r.method].lstrip("@")
            if r.method == "spf" and "@" in target:
                target = target.rpartition("@")[2]
            if r.method == "dmarc" and r.result == "fail":
                sev = "critical"
            elif r.result == "temperror":
                sev = "warning"
            elif dmarc_pass:
                sev = "info"
            elif unauthenticated or r.method == "dmarc":
                sev = "critical" if r.result in ("fail", "permerror") or unauthenticated else "warning"
            else:
                sev = "warning"
            why = _EXPLAIN.get((r.method, r.result), f"{r.method} gave {r.result}")
            detail = f"{host} recorded {r.method}={r.result}" + (f" for {target}" if target else "") + f": {why}."
            if r.comment:
                detail += f" Receiver's note: {r.comment[:200]}."
            if dmarc_pass and r.method != "dmarc":
                detail += " DMARC still passed through the other method, so this alone is not why the mail was junked."
            elif unauthenticated and r.method != "dmarc":
                detail += " Neither SPF nor DKIM passed: Gmail and Yahoo junk or reject unauthenticated mail."
            if ar.position > 0:
                detail += " (This header is not the topmost one: it was added by an earlier hop.)"
            rem = {"spf": ["message.fix_authentication", "spf.add_record"],
                   "dkim": ["message.dkim_fix_signature", "dkim.publish_key"],
                   "dmarc": ["message.fix_authentication", "message.align_domains", "dmarc.publish"]}[r.method]  # fmt: skip
            if r.method == "spf" and r.result != "none":
                rem = ["message.fix_authentication"]
            if r.method == "dmarc" and r.result == "none":
                rem = ["dmarc.publish"]
            out.append(
                finding(
                    "message.auth_failed",
                    sev,  # type: ignore[arg-type]
                    f"{r.method.upper()} {r.result} at {ar.authserv_id or 'the receiver'}"
                    + (f" for {target}" if target else ""),
                    detail,
                    evidence={"host": ar.authserv_id or "", "value": f"{r.method}={r.result}", "target": target,
                              "record": _clause(r),
                              "method": r.method, "result": r.result, "error": r.comment or r.reason,
                              "header_position": ar.position},
                    remediation=rem,
                    check=CHECK,
                )
            )
        if not methods and not ar.results:
            continue
    return out


def _clause(r: Any) -> str:
    props = " ".join(f"{k}={v}" for k, v in list(r.props.items())[:4])
    return f"{r.method}={r.result}" + (f" ({r.comment[:120]})" if r.comment else "") + (f" {props}" if props else "")


def _receiver_dkim_pass(st: Static) -> set[str]:
    """Domains the receiver's own Authentication-Results recorded dkim=pass for."""
    return {r.prop("header.d", "header.i").lstrip("@").rpartition("@")[2].lower()
            for ar in st.authres for r in ar.get("dkim") if r.result in PASSING}


def _dkim_findings(st: Static, results: list[SigResult], use_dns: bool) -> list[Finding]:
    out: list[Finding] = []
    if not st.sigset.dkim and _receiver_dkim_pass(st):
        # The receiver saw a valid signature: this copy lost the header (forwarded as text,
        # copied from a client that hides it). Not a cause of anything.
        passed = sorted(_receiver_dkim_pass(st))
        out.append(
            finding(
                "message.dkim_missing",
                "info",
                "This copy has no DKIM-Signature header, but the receiver recorded dkim=pass",
                f"The receiver's Authentication-Results show dkim=pass for {', '.join(passed)}, so the message was "
                "signed when it arrived; the header was lost in this copy. Paste the original (Show original / "
                ".eml) to have the signature itself checked.",
                evidence={"target": st.from_domain, "count": 0, "value": ", ".join(passed)},
                check=CHECK,
            )
        )
        return out
    if not st.sigset.dkim:
        if st.sigset.error and st.pm.has("DKIM-Signature"):
            out.append(finding("message.dkim_invalid", "warning", "The DKIM signature can't be read",
                               f"dkimpy could not parse the message: {st.sigset.error}.",
                               evidence={"error": st.sigset.error},
                               remediation=["message.dkim_fix_signature"], check=CHECK))  # fmt: skip
            return out
        out.append(
            finding(
                "message.dkim_missing",
                "warning",
                "The message is not DKIM-signed",
                "No DKIM-Signature header. Gmail and Yahoo require SPF or DKIM from every sender and both from "
                "bulk senders; without an aligned DKIM signature DMARC depends on SPF alone, which breaks on "
                "forwarding. Sign outgoing mail with a key published at <selector>._domainkey.<From domain>.",
                evidence={"target": st.from_domain, "count": 0},
                remediation=["dkim.publish_key", "message.fix_authentication"],
                check=CHECK,
            )
        )
        return out
    any_valid = any(r.status == "valid" for r in results)
    receiver_pass = {(r.prop("header.d", "header.i").lstrip("@").lower()) for ar in st.authres for r in ar.get("dkim")
                     if r.result in PASSING}  # fmt: skip
    for r in results:
        s = r.sig
        target = s.key_name or s.domain or "(no d=)"
        ev = {"target": s.domain, "selector": s.selector, "host": s.key_name, "value": r.status,
              "error": r.reason, "count": r.keysize, "algorithm": s.algorithm,
              "signed_headers": s.signed_headers, "issues": r.issues}  # fmt: skip
        if r.status == "valid":
            out.append(
                finding(
                    "message.dkim_valid",
                    "warning" if r.issues else "ok",
                    f"DKIM signature d={s.domain} s={s.selector} verifies"
                    + (" but has weak settings" if r.issues else ""),
                    (f"Our verification passed (key {r.keysize} bits, {s.algorithm}). " if r.keysize else
                     "Our verification passed. ")
                    + ("Issues: " + "; ".join(r.issues) + "." if r.issues else ""),
                    evidence=ev,
                    remediation=["message.dkim_fix_signature"] if r.issues else [],
                    check=CHECK,
                )
            )
        elif r.status == "unknown":
            out.append(
                finding(
                    "message.dkim_unknown",
                    "unknown",
                    f"DKIM signature d={s.domain} s={s.selector} could not be checked",
                    f"{r.reason[:1].upper() + r.reason[1:]}. Nothing is concluded from a key we could not read.",
                    evidence=ev,
                    check=CHECK,
                )
            )
        else:
            rem = ["message.dkim_fix_signature"]
            if r.key_problem in ("missing", "revoked", "unparsable", "weak"):
                rem = ["dkim.publish_key", "message.dkim_fix_signature"]
            detail = f"Our verification failed: {r.reason}."
            if s.domain in receiver_pass:
                detail += (
                    " The receiver recorded dkim=pass for this domain, so the signature was probably valid on "
                    "arrival and the copy checked here differs (a mail client or the paste changed line breaks, "
                    "encoding or spaces). Attach the original .eml if you can."
                )
            # The receiver's dkim=pass outweighs a failure on a copy: not a cause (info).
            sev = "info" if s.domain in receiver_pass else ("warning" if any_valid else "critical")
            if any_valid and sev == "warning":
                detail += " Another signature on this message is valid, so this one alone does not fail DKIM."
            out.append(
                finding(
                    "message.dkim_invalid",
                    sev,  # type: ignore[arg-type]
                    f"DKIM signature d={s.domain} s={s.selector} does not verify",
                    detail,
                    evidence=ev,
                    remediation=rem,
                    check=CHECK,
                )
            )
        _ = target
    if st.sigset.extra:
        out.append(finding("message.dkim_unknown", "info", f"{st.sigset.extra} more DKIM signatures were not checked",
                           "Only the first signatures are verified.", evidence={"count": st.sigset.extra},
                           check=CHECK))  # fmt: skip
    return out


def _aligned(a: str, b: str, mode: str) -> bool:
    from handlers.dmarc import org_domain

    if not a or not b:
        return False
    if mode == "s":
        return a == b
    return a == b or org_domain(a) == org_domain(b)


def _alignment_findings(
    st: Static, sigs: list[SigResult], dmarc_info: tuple[Any, Any, Any] | None, spf_res: Any, use_dns: bool
) -> list[Finding]:
    fd = st.from_domain
    if not fd:
        return []
    rec = dmarc_info[0] if dmarc_info else None
    adkim = (rec.tags.get("adkim", "r").lower() if rec else "r") or "r"
    aspf = (rec.tags.get("aspf", "r").lower() if rec else "r") or "r"
    policy = rec.policy if rec else ""
    # SPF result: the receiver's (topmost A-R that has one), else ours.
    spf_result = ""
    spf_source = ""
    for ar in st.authres:
        rs = ar.get("spf")
        if rs:
            spf_result, spf_source = rs[0].result, ar.authserv_id or "the receiver"
            break
    if not spf_result and spf_res is not None:
        spf_result, spf_source = spf_res.result, "our SPF check"
    # DKIM: our verification, else the receiver's pass.
    dkim_pass = {r.sig.domain for r in sigs if r.status == "valid"}
    dkim_unknown = {r.sig.domain for r in sigs if r.status == "unknown"}
    if not sigs or dkim_unknown:
        for ar in st.authres[:1]:
            for r in ar.get("dkim"):
                if r.result in PASSING:
                    d = r.prop("header.d", "header.i").lstrip("@").rpartition("@")[2].lower()
                    if d:
                        dkim_pass.add(d)
    all_d = [s.domain for s in st.sigset.dkim if s.domain]
    dkim_ok = [d for d in dkim_pass if _aligned(d, fd, adkim)]
    spf_aligned_id = _aligned(st.mailfrom_domain, fd, aspf)
    spf_ok = spf_aligned_id and spf_result in PASSING
    ev: dict[str, Any] = {
        "target": fd, "value": policy or "none", "host": st.mailfrom_domain, "selector": ", ".join(all_d),
        "from_domain": fd, "spf_domain": st.mailfrom_domain, "spf_result": spf_result or None,
        "dkim_domains": all_d, "dkim_pass_domains": sorted(dkim_pass), "adkim": adkim, "aspf": aspf,
        "dmarc_policy": policy or None,
    }  # fmt: skip
    if dkim_ok or spf_ok:
        via = []
        if dkim_ok:
            via.append(f"DKIM d={dkim_ok[0]}")
        if spf_ok:
            via.append(f"SPF {st.mailfrom_domain} ({spf_source})")
        return [finding("message.aligned", "ok", f"From domain {fd} is aligned via {' and '.join(via)}",
                        f"DMARC alignment ({'strict' if adkim == 's' else 'relaxed'} DKIM, "
                        f"{'strict' if aspf == 's' else 'relaxed'} SPF) holds.",
                        evidence=ev, check=CHECK)]  # fmt: skip
    # Could it still align, given what we could not see?
    maybe = [d for d in dkim_unknown if _aligned(d, fd, adkim)]
    if maybe or (spf_aligned_id and not spf_result):
        what = f"DKIM d={maybe[0]} (key not fetched)" if maybe else f"SPF for {st.mailfrom_domain} (no result seen)"
        return [finding("message.alignment_unknown", "unknown", f"Alignment of {fd} could not be confirmed",
                        f"The aligned identifier {what} could not be verified here.", evidence=ev, check=CHECK)]  # fmt: skip
    parts = [f"From domain: {fd}."]
    if st.mailfrom_domain:
        parts.append(
            f"SPF domain (envelope sender): {st.mailfrom_domain} — "
            + ("aligned" if spf_aligned_id else f"not aligned ({'strict' if aspf == 's' else 'relaxed'})")
            + (f", SPF {spf_result} per {spf_source}." if spf_result else ", SPF result unknown.")
        )
    else:
        parts.append("No envelope sender (Return-Path) is visible.")
    if all_d:
        parts.append(
            "DKIM d=: " + ", ".join(
                f"{d} ({'valid' if d in dkim_pass else 'not valid'}, "
                f"{'aligned' if _aligned(d, fd, adkim) else 'not aligned'})" for d in all_d
            ) + "."
        )
    else:
        parts.append("No DKIM signature.")
    if rec is not None:
        parts.append(f"{fd}'s DMARC policy is p={policy or '?'} (adkim={adkim}, aspf={aspf}).")
        sev = "critical" if policy in ("reject", "quarantine") else "warning"
    else:
        parts.append(
            f"{fd} has no DMARC record" + ("" if dmarc_info is not None or not use_dns else " (lookup failed)")
            + "; Gmail and Yahoo still require From alignment for bulk mail."
        )
        sev = "warning"
    parts.append(
        "DMARC passes only when SPF or DKIM passes for the From domain (or its organisational domain): sign "
        "with d=" + fd + " or send with an envelope sender in " + fd + "."
    )
    rem = ["message.align_domains"] + (["dmarc.publish"] if rec is None else [])
    return [finding("message.not_aligned", sev, f"From domain {fd} is not aligned with SPF or DKIM",  # type: ignore[arg-type]
                    " ".join(parts), evidence=ev, remediation=rem, check=CHECK)]  # fmt: skip


def _our_spf_findings(st: Static, res: Any) -> list[Finding]:
    result = res.result
    sev = {"pass": "ok", "fail": "critical", "softfail": "warning", "neutral": "warning", "none": "warning",
           "permerror": "critical", "temperror": "unknown"}.get(result, "info")  # fmt: skip
    ip = st.path.sending_ip or ""
    dom = res.domain
    detail = (
        f"The receiver's headers show no SPF result, so we evaluated SPF for {dom} and the sending IP {ip}: "
        f"{result}."
    )
    if res.problem:
        detail += f" {res.problem}."
    rem = [] if result == "pass" else (["spf.add_record"] if result in ("none",) else ["message.fix_authentication"])
    return [finding("message.spf_result", sev, f"SPF {result} for {dom} from {ip}", detail,  # type: ignore[arg-type]
                    evidence={"target": dom, "ip": ip, "value": result, "error": res.problem or ""},
                    remediation=rem, check=CHECK)]  # fmt: skip


def _arc_finding(st: Static, arc: ArcResult | None) -> Finding:
    sets = arc.sets if arc else []
    first = [ar for ar in st.arc_authres if ar.instance == 1]
    orig = ""
    if first:
        orig = ", ".join(f"{r.method}={r.result}" for r in first[0].results if r.method in ("spf", "dkim", "dmarc"))
    cv = arc.cv if arc else "none"
    sev = {"pass": "info", "fail": "warning", "unknown": "unknown"}.get(cv, "info")
    detail = (
        f"The message carries {max(len(st.arc_authres), len(sets))} ARC set(s) (RFC 8617): forwarders and mailing "
        f"lists record the authentication they saw, so receivers can trust mail whose SPF/DKIM broke on the way. "
        f"Our ARC chain validation: cv={cv}" + (f" ({arc.reason})" if arc and arc.reason else "") + "."
    )
    if orig:
        detail += f" The first ARC hop ({first[0].authserv_id or 'unnamed'}) saw: {orig}."
    return finding("message.arc", sev, f"ARC chain: {cv}", detail,  # type: ignore[arg-type]
                   evidence={"value": cv, "count": len(sets) or len(st.arc_authres), "host": first[0].authserv_id if first else "",
                             "error": arc.reason if arc else ""}, check=CHECK)  # fmt: skip


def _path_finding(st: Static) -> Finding:
    p = st.path
    if not p.hops:
        return finding("message.path", "info", "No Received headers",
                       "The paste has no Received headers, so the sending path and IP are unknown. Paste the full "
                       "headers (in Gmail: ⋮ → Show original).", evidence={"count": 0}, check=CHECK)  # fmt: skip
    hop = p.sending_hop
    lines = []
    for h in p.hops:
        d = f" +{h.delay_s:.0f}s" if h.delay_s is not None else ""
        ip = f" [{h.from_ip}]" if h.from_ip else ""
        lines.append(f"{h.index}. {h.from_helo or '?'}{ip} → {h.by or '?'}{d}")
    detail = "Path (oldest first): " + "; ".join(lines[:12]) + ("; …" if len(lines) > 12 else "") + "."
    if hop is not None:
        detail += (
            f" The first external sending IP is {p.sending_ip}"
            + (f" ({hop.from_rdns})" if hop.from_rdns else "")
            + f", handed to {hop.by or 'the next hop'}; receivers judge this IP's reputation and reverse DNS."
        )
    else:
        detail += " Every hop is internal (private addresses): no external sending IP is visible."
    if p.slow:
        detail += f" Hop(s) {', '.join(map(str, p.slow))} took over 15 minutes: the mail was queued or deferred (greylisting, rate limits)."
    if p.skew:
        detail += f" Hop(s) {', '.join(map(str, p.skew))} are dated before the previous hop: a server clock is wrong."
    title = f"Sent from {p.sending_ip} through {len(p.hops)} hop(s)" if p.sending_ip else f"{len(p.hops)} Received hop(s), no external sending IP"
    return finding("message.path", "info", title, detail,
                   evidence={"ip": p.sending_ip, "target": p.sending_ip, "host": (hop.from_rdns or hop.from_helo) if hop else "",
                             "ptr": hop.from_rdns if hop else "",
                             "count": len(p.hops), "value": p.total_delay_s}, check=CHECK)  # fmt: skip


def _blocklist_findings(st: Static, rows: list[BlocklistResult], found: list[Finding]) -> list[Finding]:
    """Keep the engine's findings for the sending IP and From domain; URL domains become message.url_listed."""
    urls = set(st.url_domains) - {st.from_domain}
    out: list[Finding] = []
    per_domain: dict[str, list[Finding]] = {}
    for f in found:
        target = str(f.evidence.get("target", "")).lower()
        if target not in urls:
            out.append(f)
        elif f.code == "blocklist.listed":
            per_domain.setdefault(target, []).append(f)
        elif f.code == "blocklist.unknown":
            out.append(f)
    rank = {"critical": 0, "warning": 1, "info": 2}
    for target, hits in per_domain.items():
        hits.sort(key=lambda h: rank.get(h.severity, 3))
        worst = hits[0].severity
        sev = worst if worst in ("critical", "warning") else "info"
        zones = [str(h.evidence.get("zone", "")) for h in hits]
        names = [str(h.evidence.get("list") or h.evidence.get("zone", "")) for h in hits]
        out.append(
            finding(
                "message.url_listed",
                sev,  # type: ignore[arg-type]
                f"The body links to {target}, which is listed on {', '.join(names)}",
                " ".join(h.detail for h in hits)
                + " Filters junk mail that links to domains on URI blocklists (Spamhaus DBL, SURBL, URIBL), "
                "whoever sends it. Remove or replace the link (also tracking/shortener domains), or get the "
                "domain cleaned and delisted.",
                evidence={"target": target, "host": ", ".join(zones), "zone": ", ".join(zones),
                          "value": ", ".join(c for h in hits for c in h.evidence.get("codes", [])),
                          "count": len(hits), "delist_url": hits[0].evidence.get("delist_url", ""),
                          "meaning": "; ".join(str(h.evidence.get("meaning", "")) for h in hits if h.evidence.get("meaning")),
                          "hits": [{"zone": h.evidence.get("zone", ""), "codes": list(h.evidence.get("codes", []))}
                                   for h in hits]},
                remediation=["message.url_reputation", "blocklist.delist"],
                check=CHECK,
            )
        )
    listed = {f.evidence.get("target") for f in out if f.code == "message.url_listed"}
    clean = [d for d in st.url_domains if d not in listed and d != st.from_domain]
    if clean:
        out.append(finding("message.url_clean", "ok", f"{len(clean)} link domain(s) are not on the URI blocklists that answered",
                           ", ".join(clean[:10]), evidence={"count": len(clean), "value": clean[:10]}, check=CHECK))  # fmt: skip
    return out


# ---------------------------------------------------------------------------
_WEIGHT = {
    "blocklist.listed": 100, "message.url_listed": 92, "message.auth_failed": 95, "message.dkim_invalid": 85,
    "message.not_aligned": 80, "message.spf_result": 78, "ptr.missing": 75, "ptr.mismatch": 72,
    "message.attachment_name": 60, "message.missing_header": 58, "message.dkim_missing": 62,
    "message.no_list_unsubscribe": 50, "message.short_body": 48, "message.subject_suspicious": 45,
    "ptr.generic": 35, "message.dkim_valid": 20, "message.arc": 10,
}  # fmt: skip
_SEV_BASE = {"critical": 1000, "warning": 500}


def _verdict(findings: list[Finding]) -> Finding:
    causes = [f for f in findings if f.severity in ("critical", "warning") and f.code != "message.verdict"]
    causes.sort(key=lambda f: -(_SEV_BASE[f.severity] + _WEIGHT.get(f.code, 30)))
    ranked = []
    seen: set[tuple[str, str]] = set()
    for f in causes:
        key = (f.code, str(f.evidence.get("target", "")))
        if key in seen:
            continue
        seen.add(key)
        ranked.append({"code": f.code, "severity": f.severity, "title": f.title,
                       "target": f.evidence.get("target") or f.evidence.get("ip") or ""})  # fmt: skip
    rem: list[str] = []
    for f in causes[:4]:
        for r in f.remediation:
            if r in ALLOWED_REMEDIATION and r not in rem:
                rem.append(r)
    if not ranked:
        unknown = sum(1 for f in findings if f.severity == "unknown")
        return finding(
            "message.verdict",
            "info",
            "Nothing in this message explains the spam folder",
            "Authentication, path and content look fine"
            + (f" ({unknown} check(s) could not be completed)" if unknown else "")
            + ". What a message can't show: the sender's reputation with this mailbox provider (complaint and "
            "spam rates, engagement, volume spikes) and the recipient's own filters. Check Gmail Postmaster Tools / "
            "Microsoft SNDS and ask recipients to mark the mail “Not spam”.",
            evidence={"causes": [], "count": 0},
            check=CHECK,
        )
    top = "; ".join(c["title"] for c in ranked[:3])
    sev = "critical" if ranked[0]["severity"] == "critical" else "warning"
    return finding(
        "message.verdict",
        sev,  # type: ignore[arg-type]
        f"Most likely reason: {ranked[0]['title']}",
        f"Likely causes, most important first: {top}" + ("; …" if len(ranked) > 3 else "") + ".",
        evidence={"causes": ranked, "count": len(ranked), "value": ranked[0]["title"], "code": ranked[0]["code"]},
        remediation=rem,
        check=CHECK,
    )


def _details(st: Static, sigs: list[SigResult], arc: ArcResult | None, dmarc_info: Any, spf_res: Any) -> dict[str, Any]:
    pm = st.pm
    selectors = []
    for s in st.sigset.dkim:
        if s.domain and s.selector:
            status = next((r.status for r in sigs if r.sig is s), "unknown")
            item = {"domain": s.domain, "selector": s.selector, "status": status}
            if item not in selectors:
                selectors.append(item)
    rec = dmarc_info[0] if dmarc_info else None
    return {
        "from": st.from_addr,
        "from_domain": st.from_domain,
        "envelope_sender": st.mailfrom,
        "subject": (pm.decoded("Subject") or "")[:300],
        "date": pm.first("Date"),
        "message_id": (pm.first("Message-ID") or "")[:300],
        "dkim_selectors": selectors,
        "dkim": [r.to_dict() for r in sigs],
        "authentication_results": [a.to_dict() for a in st.authres],
        "arc_authentication_results": [a.to_dict() for a in st.arc_authres],
        "arc": arc.to_dict() if arc else None,
        "dmarc": {"domain": rec.location, "record": rec.text, "policy": rec.policy} if rec else None,
        "path": st.path.to_dict(),
        "sending_ip": st.path.sending_ip,
        "url_domains": st.url_domains,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in pm.attachments[:50]],
        "bulk_signals": bulk_signals(pm),
        "charsets": pm.charsets,
        "body_excerpt": " ".join(pm.body_text.split())[:300],
        "internal_hops": [h.index for h in st.path.hops if h.from_ip and is_internal(h.from_ip)],
    }
