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

import re

from knowledge.bounce import BounceKnowledge, CompiledProvider, ProviderIndex, ProviderRule

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
_HOST_TAIL = re.compile(r"\[[^\]]*\](?::\d+)?$|:\d+$")  # "mx.example[192.0.2.1]:25" -> "mx.example"
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
    sender_domain = _domain(fact.sender)
    own = idx.domain(sender_domain) if sender_domain else None
    text = fact.diagnostic
    if text:
        found = _from_text(idx, text, sender_domain, own)
        if found is not None:
            return found
    domain = _domain(fact.recipient) or _masked_domain(fact.diagnostic)
    if domain and (not host or _MASKED_HOST.search(host)):
        return idx.domain(domain)
    return None


def _masked_domain(text: str) -> str:
    # A recipient whose local part was masked before pasting ("***@docomo.ne.jp",
    # "<...@EXAMPLE.jp>") is dropped by the parsers, but its domain still names the
    # mailbox provider.
    m = _MASKED_ADDRESS.search(text) if text else None
    return m.group(1).lower() if m else ""


def _domain(address: str | None) -> str:
    return (address or "").rpartition("@")[2].strip("<>. ").lower()


def _from_text(
    idx: ProviderIndex, text: str, sender_domain: str, own: CompiledProvider | None
) -> CompiledProvider | None:
    cut = _RETURNED.search(text)
    if cut is not None:
        text = text[: cut.start()]
    if idx.notice is not None:
        text = idx.notice.sub(" ", text)
    low = text.lower()

    def pick(hits: list[CompiledProvider]) -> CompiledProvider | None:
        # The sender's own provider is only believed from the answering host (tier 1).
        hits = [p for p in hits if p is not own]
        if not hits:
            return None
        gateways = [p for p in hits if p.spec.gateway]
        return (gateways or hits)[0]

    hosts: list[CompiledProvider] = []
    for m in _HOST.finditer(low):
        name = m.group(1)
        if sender_domain and (name == sender_domain or name.endswith("." + sender_domain)):
            continue
        if _SENDER_CONTEXT.search(low, max(0, m.start() - 24), m.start()):
            continue
        found = idx.host(name)
        if found is not None:
            hosts.append(found)
    best = pick(hosts)
    if best is not None:
        return best
    tier: list[CompiledProvider] = []
    if idx.codes is not None:
        tier += [idx.by_id[m.lastgroup[2:]] for m in idx.codes.finditer(text) if m.lastgroup]
    tier += [p for marker, p in idx.markers if marker in low]
    best = pick(tier)
    if best is not None:
        return best
    if idx.names is not None:
        return pick([idx.by_id[m.lastgroup[2:]] for m in idx.names.finditer(text) if m.lastgroup])
    return None


def find_rule(provider: CompiledProvider | None, fact: Fact) -> ProviderRule | None:
    if provider is None or not fact.diagnostic:
        return None
    low = fact.diagnostic.lower()
    for rule in provider.spec.rules:
        if rule.matches(low, fact.diagnostic, fact.reply_code, fact.status, fact.command):
            return rule
    return None
