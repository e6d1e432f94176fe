"""Every finding code the engines can emit is documented (knowledge/findings.yaml -> docs/findings.md).

SPEC: codes are stable and all of them are documented. The scan reads the
handlers' source for code literals; remediation ids share the dotted shape,
so they are told apart by the knowledge base's own list.
"""

from __future__ import annotations

import re
from pathlib import Path

import knowledge
from knowledge.yamlload import load_yaml

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("spf", "dkim", "dmarc", "mx", "ptr", "mta_sts", "tls_rpt", "bimi", "dnssec", "blocklist",
            "requirements", "message", "bounce", "reputation", "domain", "audit", "reports")
LITERAL = re.compile(r'"((?:' + "|".join(PREFIXES) + r')\.[a-z0-9_]+)"')


def test_every_emitted_code_has_texts_in_both_languages() -> None:
    documented = set(load_yaml((ROOT / "knowledge" / "findings.yaml").read_text(encoding="utf-8")))
    remediation_ids = {r.id for r in knowledge.all_remediation()}
    emitted: dict[str, str] = {}
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        for m in LITERAL.finditer(path.read_text(encoding="utf-8")):
            emitted.setdefault(m.group(1), str(path.relative_to(ROOT)))
    missing = {c: where for c, where in emitted.items() if c not in documented and c not in remediation_ids}
    assert not missing, f"codes emitted but not in knowledge/findings.yaml: {missing}"
    for code in emitted:
        if code in documented:
            assert knowledge.finding_text(code, "ja") is not None, code


def test_every_per_recipient_bounce_code_is_documented() -> None:
    """Bounce findings are named `bounce.<reason>` at run time (no literal to scan)."""
    from knowledge import loader

    doc = (Path(__file__).resolve().parent.parent / "docs" / "findings.md").read_text(encoding="utf-8")
    missing = [r for r in loader.load_reasons() if f"`bounce.{r}`" not in doc]
    assert not missing, missing
