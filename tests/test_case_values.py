"""Fix texts carry the case's own values: the domain audited, the IP checked, the
selector found — not the documentation values they are written with."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import knowledge
from bot.case_values import CaseValues, values_for
from handlers.model import Finding, Report
from tests.dnsworld import DNSWorld

CASE = CaseValues(domain="shop-kanri.jp", ipv4="198.18.7.25", ipv6="2001:db8:7::25", selector="k2024")
LEFTOVERS = {
    "example.com": re.compile(r"(?<![\w-])example\.com(?![\w-])", re.IGNORECASE),
    "example.jp": re.compile(r"(?<![\w-])example\.jp(?![\w-])", re.IGNORECASE),
    "192.0.2.10": re.compile(r"(?<![\d.])192\.0\.2\.10(?![\d.])"),
    "10.2.0.192.in-addr.arpa": re.compile(r"10\.2\.0\.192\.in-addr\.arpa"),
    "2001:db8::10": re.compile(r"2001:db8::10(?![\w:])", re.IGNORECASE),
    "s2026": re.compile(r"(?<![\w-])s2026(?![\w-])"),
}


def shown_texts(entry_id: str, lang: str) -> list[str]:
    entry = knowledge.find_remediation(entry_id)
    assert entry is not None
    texts = [entry.title.get(lang), entry.verify.get(lang)]
    for step, blocks in entry.steps_with_code(lang):
        texts.append(step)
        texts += ["\n".join(b.lines) for b in blocks]
    return texts


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_fix_text_rendered_for_a_case_has_no_example_value_left(lang: str) -> None:
    left: list[str] = []
    for entry in knowledge.all_remediation():
        for text in shown_texts(entry.id, lang):
            filled = CASE.fill(text)
            left += [f"{entry.id}: {name}" for name, rx in LEFTOVERS.items() if rx.search(filled)]
    assert not left, left


def test_only_the_documentation_values_are_replaced() -> None:
    text = ("_dmarc.example.com. TXT; include:_spf.example.net; myexample.com; example.com.au; "
            "mailcheck spf example.com 192.0.2.10 (an IP that is not yours: 203.0.113.99); 192.0.2.100")
    assert CASE.fill(text) == (
        "_dmarc.shop-kanri.jp. TXT; include:_spf.example.net; myexample.com; example.com.au; "
        "mailcheck spf shop-kanri.jp 198.18.7.25 (an IP that is not yours: 203.0.113.99); 192.0.2.100")
    assert CaseValues().fill(text) == text  # nothing known: the text stays as written


def test_a_report_knows_its_domain_ip_and_selector() -> None:
    spf = Report(kind="spf", subject="shop-kanri.jp 198.18.7.25")
    assert values_for(spf) == CaseValues(domain="shop-kanri.jp", ipv4="198.18.7.25")
    audit = Report(kind="domain", subject="shop-kanri.jp",
                   details={"dkim": {"keys": [{"selector": "k2024", "revoked": False}]},
                            "ptr": {"198.18.7.25": {"role": "sending"}, "198.18.7.1": {"role": "mx"}}},
                   findings=[Finding("spf.ok", "ok", "fine")])
    assert values_for(audit) == CaseValues(domain="shop-kanri.jp", ipv4="198.18.7.25", selector="k2024")


def test_the_terminal_fixes_name_the_audited_domain_and_the_given_ip(dns_world: DNSWorld) -> None:
    p = subprocess.run([sys.executable, "-m", "bot", "domain", "weak.example", "--ip", "192.0.2.30"],
                       env={**dns_world.env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=120)
    fixes = p.stdout.split("How to fix", 1)[1]
    assert "_dmarc.weak.example" in fixes and "dig +short -x 192.0.2.30" in fixes
    assert "30.2.0.192.in-addr.arpa" in fixes
    assert not LEFTOVERS["example.com"].search(fixes) and "192.0.2.10" not in fixes
