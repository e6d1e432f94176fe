"""Which receiving provider produced the reply, and what its own table says.

Evidence, strongest first: the remote host name (MX / relay), markers in the
reply text (`gsmtp`, `protection.outlook.com`, Yahoo's `[TSS04]` ...), and, for
accepted mail only, the recipient's domain.
"""

from __future__ import annotations

from knowledge.bounce import BounceKnowledge, CompiledProvider, ProviderRule

from .fact import Fact


def detect(kb: BounceKnowledge, fact: Fact) -> CompiledProvider | None:
    host = (fact.remote_host or "").lower()
    if host:
        for p in kb.providers:
            if p.host_matches(host):
                return p
    text = fact.diagnostic
    if text:
        low = text.lower()
        for p in kb.providers:
            if p.text_matches(low, text):
                return p
    domain = (fact.recipient or "").rpartition("@")[2].lower()
    if domain and not host:
        for p in kb.providers:
            if domain in p.domains:
                return p
    return None


def find_rule(provider: CompiledProvider | None, fact: Fact) -> ProviderRule | None:
    if provider is None or not fact.diagnostic:
        return None
    low = fact.diagnostic.lower()
    for rule in provider.spec.rules:
        if rule.matches(low, fact.diagnostic, fact.reply_code, fact.status, fact.command):
            return rule
    return None
