"""Which receiving provider produced the reply, and what its own table says.

Evidence, strongest first (the first tier that names a provider decides):

1. the remote host that answered (MX / relay / the host a notice names);
2. host names inside the reply: `[outlook.com]`, `by BN8P...prod.protection.outlook.com`,
   `mx.google.com ESMTP`, `[mta7.am0.yahoodns.net]`, the host of a help URL;
3. the provider's own reply-code families (Yahoo `[TSS04]`, Outlook `S3150`, Apple
   `[CS01]`, Comcast `RL000001`, Orange `OFR...`) and text markers (`- gsmtp`, `aka.ms/...`);
4. the provider's name in prose ("Google's message size limits", "Yahoo Mail");
5. the recipient's domain, when no answering host contradicts it.

Within a tier a filtering gateway (Mimecast, Proofpoint ...) wins over a mailbox
provider: it stands in front of the recipient's domain and wrote the reply.
Nothing on the sending side may name the provider: addresses (`user@gmail.com` is
a mailbox, not a host), the client host / HELO a receiver quotes back, the sender's
own domain, a returned message's headers, and a provider's own sending-side notice
("Google tried to deliver your message ...") are left out.
"""

from __future__ import annotations

import ipaddress
import re

from knowledge.bounce import BounceKnowledge, CompiledProvider, ProviderIndex, ProviderRule, loose, words_of

from .fact import Fact

# A host name: two or more labels ending in an alphabetic TLD. `*` is allowed in a
# label because admins mask hosts as `mx*.hotmail.com`.
_HOST = re.compile(r"(?<![\w@.*-])((?:[a-z0-9*](?:[a-z0-9*-]{0,61}[a-z0-9*])?\.)+[a-z]{2,24})(?![\w@-])")
# The receiver quoting the SENDING side back: "Client host [x] blocked", "helo=x",
# "from x (y [ip])". A host right after these is ours, not the provider's.
_SENDER_CONTEXT = re.compile(
    r"(?:client host|client|from|helo|ehlo|rdns|ptr|reverse dns|sending host|your host|sender|"
    r"smtp\.mailfrom|envelope-from|domain|spf\b[^.;]{0,24}\bfor)\s*[=:]?\s*[\[(<\"']?\s*$"
)
# Where a returned message's own headers start: anything after is the sender's mail.
_RETURNED = re.compile(r"\b(?:received:\s*from|reporting-mta:|x-originating-ip:|message-id:)", re.I)
_HOST_TAIL = re.compile(r"\[[^\]]*\](?::\d+)?$|:\d+$")  # relay=host[192.0.2.1]:25 -> the host name alone
_MASKED_ADDRESS = re.compile(
    r"(?<![\w.+*×-])(?:\*{1,32}|x{3,32}|×{1,32}|\.{3}|\(redacted\)|redacted)@((?:[a-z0-9-]{1,63}\.){1,8}[a-z]{2,24})(?![\w-])",
    re.I,
)
_MASKED_HOST = re.compile(r"^[\d.*x:\[\]]*$|redacted|\bip\b|\*\.\*|×", re.I)


def detect(kb: BounceKnowledge, fact: Fact) -> CompiledProvider | None:
    idx = kb.provider_index
    host = _HOST_TAIL.sub("", (fact.remote_host or "").lower()).strip(". ")
    if host:
        found = idx.host(host)
        if found is not None:
            return found
    if fact.source == "arf":
        found = _report_sender(idx, fact)
        if found is not None:
            return found
    sender_domain = _domain(fact.sender)
    own = idx.domain(sender_domain) if sender_domain else None
    text = fact.diagnostic
    if text:
        found = _from_text(idx, text, sender_domain, own)
        if found is not None:
            return found
    # The mailbox that refused is where the message ended up: a forwarded recipient's
    # Final-Recipient (alice.fwd@gmail.com), not the address the sender used.
    domain = _domain(fact.extra.get("final_recipient") or fact.recipient) or _masked_domain(fact.diagnostic)
    if domain and not _names_a_host(host):
        return idx.domain(domain)
    return None


_USER_AGENT = re.compile(r"user-agent:\s*(\S{1,100})", re.I)


def _report_sender(idx: ProviderIndex, fact: Fact) -> CompiledProvider | None:
    """The mailbox provider whose user complained, for an ARF report: its User-Agent
    (`Yahoo!-Mail-Feedback/2.0`) first — a report an ESP or a person forwards keeps it —
    then the host the report came from (`feedback@arf.mail.yahoo.com`). A bare mailbox
    domain there (`me@gmail.com`) is whoever forwarded it, not the reporter."""
    ua = _USER_AGENT.search(fact.diagnostic or "")
    if ua:
        found = _from_text(idx, ua.group(1), "", None)
        if found is not None:
            return found
    reporter = str(fact.extra.get("reporter_domain") or "")
    if reporter.count(".") >= 2:
        return idx.host(reporter)
    return None


def _names_a_host(host: str) -> bool:
    """Does `host` name a server that answered? Not when empty, masked (`*.*.*.*`,
    `[IP]`, `(redacted)`), a bare IP address, or Postfix's relay=none / local."""
    if not host or host in ("none", "local", "localhost", "unknown") or _MASKED_HOST.search(host):
        return False
    try:
        ipaddress.ip_address(host.strip("[]").removeprefix("ipv6:"))
    except ValueError:
        return True
    return False


def _masked_domain(text: str) -> str:
    # A recipient whose local part was masked before pasting ("***@docomo.ne.jp",
    # "<...@EXAMPLE.jp>") is dropped by the parsers, but its domain still names the
    # mailbox provider.
    m = _MASKED_ADDRESS.search(text) if text else None
    return m.group(1).lower() if m else ""


def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].strip("<>. ").lower()


# Evidence is looked for in the reply's first few KB: an SMTP reply line is at most
# 512 octets (RFC 5321 4.5.3.1.5) and multi-line replies stay short; what follows is
# the notice's boilerplate or a quoted message, not the receiver's words.
_EVIDENCE_CHARS = 4096


def _from_text(
    idx: ProviderIndex, text: str, sender_domain: str, own: CompiledProvider | None
) -> CompiledProvider | None:
    text = text[:_EVIDENCE_CHARS]
    cut = _RETURNED.search(text)
    if cut is not None:
        text = text[: cut.start()]
    low = text.lower()
    if idx.notice is not None:
        low = idx.notice.sub(" ", low)

    def pick(hits: list[tuple[int, CompiledProvider]]) -> CompiledProvider | None:
        # The sender's own provider is only believed from the answering host (tier 1).
        found = [p for _pos, p in sorted(hits, key=lambda h: h[0]) if p is not own]
        if not found:
            return None
        gateways = [p for p in found if p.spec.gateway]
        return (gateways or found)[0]

    hosts: list[tuple[int, CompiledProvider]] = []
    for m in _HOST.finditer(low):
        name = m.group(1)
        if sender_domain and (name == sender_domain or name.endswith("." + sender_domain)):
            continue
        if _SENDER_CONTEXT.search(low, max(0, m.start() - 24), m.start()):
            continue
        found = idx.host(name)
        if found is not None:
            hosts.append((m.start(), found))
    best = pick(hosts)
    if best is not None:
        return best
    tier: list[tuple[int, CompiledProvider]] = []
    for pattern, p in idx.codes:
        cm = pattern.search(text)
        if cm is not None:
            tier.append((cm.start(), p))
    words = words_of(low)
    for (marker, p), key in zip(idx.markers, idx.marker_keys, strict=True):
        if key is not None and key not in words:
            continue
        at = low.find(marker)
        if at >= 0:
            tier.append((at, p))
    best = pick(tier)
    if best is not None:
        return best
    return pick([
        (at, p)
        for (name, p), key in zip(idx.names, idx.name_keys, strict=True)
        if (key is None or key in words) and (at := _word_at(low, name)) >= 0
    ])


def _word_at(low: str, name: str) -> int:
    """Where `name` first occurs as a word of prose, not as part of a host name or an
    address ("gmail" in bob@gmail.com or mail.gmail.com.example is no evidence);
    -1 if nowhere. Only ASCII letters and digits join words, so a name written
    next to Japanese text ("ドコモの", "docomoから") still counts."""
    at = low.find(name)
    while at >= 0:
        before = low[at - 1] if at else " "
        end = at + len(name)
        after = low[end : end + 2]
        if not (_joins_before(before) or (after and (_joins_after(after[0]) or _dot_label(after)))):
            return at
        at = low.find(name, at + 1)
    return -1


def _joins_before(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in ".@_-")


def _joins_after(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "@_-")


def _dot_label(after: str) -> bool:
    return len(after) == 2 and after[0] == "." and after[1].isascii() and after[1].isalnum()


def find_rule(provider: CompiledProvider | None, fact: Fact) -> ProviderRule | None:
    if provider is None or not fact.diagnostic:
        return None
    low = loose(fact.diagnostic)
    for rule in provider.spec.rules:
        if rule.matches(low, fact.diagnostic, fact.reply_code, fact.status, fact.command):
            return rule
    return None
