"""Sender-side problems spotted in failure texts: TLS, DNS, connection timeouts.

The markers are the MTAs' own words (Postfix smtp(8) and tls(5) messages, Exim's
transport errors); they are matched, never shown.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from .tally import Tally

_TLS = re.compile(
    r"Cannot start TLS|TLS is required, but (?:was not offered|our TLS engine is unavailable)|"
    r"SSL_connect error|TLS handshake failed|TLS session failed|Server certificate not (?:verified|trusted)|"
    r"certificate verification failed|TLS negotiation failed|STARTTLS failed",
    re.I,
)
_NOT_FOUND = re.compile(r"Host or domain name not found|all relevant MX records point to non-existent hosts|"
                        r"all host address lookups failed permanently|unrouteable mail domain", re.I)
_TIMEOUT = re.compile(r"connect to ([^\s\[]+)\[([^\]]+)\]:\d+: (Connection timed out|Connection refused|"
                      r"No route to host|Network is unreachable)", re.I)
_TLS_HOST = re.compile(r"(?:to|with|by host|host) ([a-z0-9][a-z0-9.-]{1,250}\.[a-z]{2,24})\[", re.I)


def scan_failure_text(t: Tally, text: str, dest: str, *, connects: bool = True) -> None:
    """Look at the text of a failed attempt (or a smtp(8) warning line) for sender-side causes."""
    if "TLS" in text or "SSL" in text or "certificate" in text:
        m = _TLS.search(text)
        if m is not None:
            hm = _TLS_HOST.search(text)
            where = dest or (hm.group(1).lower() if hm else "")
            if where:
                t.tls_failures[where] += 1
                t.tls_examples.setdefault(where, text[:300])
    if "not found" in text or "non-existent" in text or "lookups failed" in text or "unrouteable" in text:
        if _NOT_FOUND.search(text) and dest:
            t.not_found[dest] += 1
    # Postfix logs each failed connection on its own line too: counted there, not twice.
    if connects and "connect to " in text:
        m2 = _TIMEOUT.search(text)
        if m2 is not None:
            key = (m2.group(1).lower(), m2.group(2))
            t.connect_failures.setdefault(key, _new())[m2.group(3)] += 1


def _new() -> Counter[str]:
    return Counter()


@cache
def microsoft_consumer_domains() -> frozenset[str]:
    """Outlook.com / Hotmail consumer domains (the provider table's recipient domains)."""
    from knowledge.bounce import load

    prov = load().by_id.get("microsoft")
    return frozenset(prov.domains) if prov is not None else frozenset()
