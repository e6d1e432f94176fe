"""Curated mail-deliverability knowledge: remediation, finding texts, bounce
reasons and provider behaviour, in English and Japanese, with sources.

Data lives in YAML beside this file and is validated by :mod:`knowledge.schema`.
Nothing is read at import time: every accessor loads (once) on first use, and
pydantic/PyYAML are only imported then, so ``import knowledge`` is cheap.

Accessors:
- :func:`remediation` / :func:`all_remediation` — remediation entries by id;
- :func:`finding_text` / :func:`localize_finding` — finding titles/details;
- :func:`reason_info` — per bounce reason (Sisimai vocabulary);
- :func:`provider` / :func:`providers` — receiving-provider knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowledge.bounce.records import ReasonRecord
    from knowledge.schema import FindingText, Provider, Remediation

__all__ = [
    "all_remediation",
    "find_remediation",
    "finding_text",
    "localize_finding",
    "provider",
    "providers",
    "reason_info",
    "remediation",
    "render_template",
]


def remediation(entry_id: str) -> Remediation:
    """The remediation entry ``entry_id`` (KeyError when unknown)."""
    from knowledge import loader

    return loader.remediation(entry_id)


def find_remediation(entry_id: str) -> Remediation | None:
    """The remediation entry ``entry_id``, or None."""
    from knowledge import loader

    return loader.find_remediation(entry_id)


def all_remediation() -> list[Remediation]:
    from knowledge import loader

    return loader.all_remediation()


def finding_text(code: str, lang: str) -> FindingText | None:
    """Severity, title/detail templates and remediation ids of a finding code."""
    from knowledge import loader

    return loader.finding_text(code, lang)


def localize_finding(
    code: str,
    lang: str,
    evidence: Mapping[str, Any] | None,
    fallback_title: str,
    fallback_detail: str,
) -> tuple[str, str]:
    """(title, detail) of a finding in ``lang`` filled from ``evidence``; never raises."""
    from knowledge import loader

    return loader.localize_finding(code, lang, evidence, fallback_title, fallback_detail)


def render_template(template: str, evidence: Mapping[str, Any] | None, lang: str) -> str:
    """Fill any knowledge template; unfilled placeholders are removed cleanly."""
    from knowledge import loader

    return loader.render_template(template, evidence, lang)


def reason_info(reason: str) -> ReasonRecord | None:
    from knowledge import loader

    return loader.reason_info(reason)


def provider(provider_id: str) -> Provider | None:
    from knowledge import loader

    return loader.provider(provider_id)


def providers() -> list[Provider]:
    from knowledge import loader

    return loader.providers()
