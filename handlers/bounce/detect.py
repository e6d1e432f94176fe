"""Cheap checks around the analyser: is a Slack paste a bounce, and what to follow up."""

from __future__ import annotations

import re

from handlers.model import Report
from handlers.net import is_internal_hop

from .scan import ADDR_RE

_MAX_SCAN = 200_000  # characters looked at by the detector

# Each pattern is anchored to a line start and uses bounded quantifiers (linear time).
_PATTERNS = [
    # SMTP reply with a 4xx/5xx code, optional enhanced status: "550-5.7.1 ...", "550 5.1.1 ...", "451 ..."
    # (also a transcript's server line "<<< 550 ...")
    re.compile(r"(?m)^[ \t>]{0,8}(?:<<< ?)?[45][0-5]\d[ -](?:[45]\.\d{1,3}\.\d{1,3}[ \t]|[A-Za-z<\[(#])"),
    # DSN fields
    re.compile(
        r"(?im)^(?:final-recipient|original-recipient|diagnostic-code|reporting-mta|remote-mta)[ \t]{0,4}:"
    ),
    re.compile(r"(?im)^status:[ \t]{0,4}[245]\.\d{1,3}\.\d{1,3}"),
    # Postfix / Sendmail log lines
    re.compile(
        r"(?m)\bto=(?:<[^>\n]{0,320}>|[^,\s<>]{0,320}),.{0,400}?\bstatus=(?:sent|deferred|bounced|expired|undeliverable)"
    ),
    re.compile(r"(?m)\bfrom=<[^>\n]{0,320}>,[ \t]{0,4}status=(?:expired|force-expired)"),
    re.compile(r"(?m)\bto=[^,\n]{0,320},.{0,600}?\bstat=(?:Sent|Deferred|[A-Z][a-z])"),
    # bounce(8)'s recipient line pasted alone: "<rcpt>: connect to ...", "<rcpt>: host ... said:"
    re.compile(
        r"(?im)^[ \t]{0,8}<[^<>\s]{1,320}>:[ \t](?:connect to |host |host or domain name not found|"
        r"delivery temporarily suspended|tls is required|cannot update mailbox|unknown user|mail for \S{1,255} loops back)"
    ),
    # Exim main log: "<id> ** addr" / "== addr" / "=> addr"
    re.compile(r"(?m)\b[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} (?:\*\*|==|=>) \S"),
]
_PHRASES = (
    "this is the mail system at host",
    "mail delivery failed",
    "delivery status notification",
    "undelivered mail returned to sender",
    "could not be delivered to one or more recipients",
    "i'm afraid i wasn't able to deliver your message",
    "the following address(es) failed",
    "delivery has failed to these recipients",
    "your message couldn't be delivered",
    "your message wasn't delivered",
    "delivery to the following recipient failed",
    "remote host said:",
    "said: 550",
    "said: 554",
    "said: 421",
    "said: 450",
    "said: 451",
    "said: 452",
    "said: 553",
    "smtp error from remote mail server",
    "message could not be delivered",
    "returned mail: ",
    "failure notice",
    "was not delivered to",  # Domino, Exchange
    "remote server returned '",  # Exchange: "Remote Server returned '550 5.1.1 ...'"
    "the following address(es) failed",
    "i wasn't able to deliver your message",  # qmail-send
)


def looks_like_bounce(text: str) -> bool:
    """Cheap detector for Slack thread pastes (no full parse, bounded time)."""
    if not text or not isinstance(text, str):
        return False
    sample = text[:_MAX_SCAN]
    if "&lt;" in sample or "&gt;" in sample:
        sample = sample.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    low = sample.lower()
    if any(p in low for p in _PHRASES):
        return True
    return any(p.search(sample) for p in _PATTERNS)


def _global(ip: str) -> bool:
    """Worth a live check: anything but internal addresses (SPEC: only DNS is asked,
    so documentation ranges used by test fixtures are fine to look up)."""
    return not is_internal_hop(ip)


def extract_followup_targets(report: Report) -> dict[str, list[str]]:
    """The sending IPs and sender domains a bounce names, for live follow-up checks.

    Sender IPs come from the receiving server's reply (Gmail, Microsoft and Yahoo
    name the connecting IP) or an ARF report's Source-IP. Sender domains come from
    the envelope sender / original sender the notice names, and from domains a
    reply blames ("Unauthenticated email from example.jp", "sending domain x").
    """
    ips: list[str] = []
    domains: list[str] = []
    for b in report.bounces:
        for ip in (b.sender_ip,):
            if ip and _global(ip) and ip not in ips:
                ips.append(ip)
        if b.sender and "@" in b.sender:
            d = b.sender.rpartition("@")[2].lower().strip(">")
            if _DOMAIN.fullmatch(d) and d not in domains:  # "***" or "xxx" is a mask, not a name
                domains.append(d)
        for d in _blamed_domains(b.diagnostic):
            if d not in domains:
                domains.append(d)
        for key in ("sender_domain", "original_sender"):
            v = b.extra.get(key)
            if isinstance(v, str) and v:
                d = v.rpartition("@")[2].lower()
                if _DOMAIN.fullmatch(d) and d not in domains:
                    domains.append(d)
    return {"sender_ips": ips, "sender_domains": domains}


_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9\-]{0,62}[a-z0-9])?\.){1,10}[a-z]{2,24}")
_BLAME = re.compile(
    r"(?i)(?:email from|mail from domain|sending domain|from domain|the domain|spf record of|dmarc policy of|domain of sender address)\s{1,3}\[?<?([A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.){1,8}[A-Za-z]{2,24})"
)


def _blamed_domains(text: str) -> list[str]:
    out: list[str] = []
    for m in _BLAME.finditer(text[:4000]):
        d = m.group(1).lower().rstrip(".")
        if d not in out:
            out.append(d)
    for m in re.finditer(r"(?i)mail from:?\s{0,2}<([^<>\s]{1,320})>", text[:4000]):
        am = ADDR_RE.match(m.group(1))
        if am:
            d = am.group(1).rpartition("@")[2].lower()
            if d not in out:
                out.append(d)
    return out
