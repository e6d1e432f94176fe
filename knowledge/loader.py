"""Lazy, cached loading of the knowledge YAML files, and localisation helpers.

Files are read and validated once, on first use (``functools.cache``), so
importing :mod:`knowledge` costs nothing at start-up.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from knowledge.bounce.records import ReasonRecord, load_reasons
from knowledge.schema import (
    FindingEntry,
    FindingText,
    Lang,
    Provider,
    Remediation,
)
from knowledge.yamlload import YAMLError, load_yaml

BASE = Path(__file__).resolve().parent
REMEDIATION_DIR = BASE / "remediation"
FINDINGS_FILE = BASE / "findings.yaml"
PROVIDERS_FILE = BASE / "providers.yaml"


class KnowledgeError(ValueError):
    """A knowledge file is missing, unreadable or does not validate."""


def _read(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return load_yaml(fh)
    except (OSError, YAMLError) as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from exc


def _mapping(path: Path) -> dict[str, Any]:
    data = _read(path)
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path.name}: expected a mapping at top level")
    return data


@cache
def load_remediation() -> dict[str, Remediation]:
    """All remediation entries, by id (every ``remediation/*.yaml`` file is a list)."""
    out: dict[str, Remediation] = {}
    for path in sorted(REMEDIATION_DIR.glob("*.yaml")):
        data = _read(path)
        if not isinstance(data, list):
            raise KnowledgeError(f"{path.name}: expected a list of entries")
        for raw in data:
            try:
                entry = Remediation.model_validate(raw)
            except ValueError as exc:
                ident = raw.get("id") if isinstance(raw, dict) else raw
                raise KnowledgeError(f"{path.name}: entry {ident!r}: {exc}") from exc
            if entry.id in out:
                raise KnowledgeError(f"{path.name}: duplicate remediation id {entry.id!r}")
            out[entry.id] = entry
    return out


@cache
def load_findings() -> dict[str, FindingEntry]:
    out: dict[str, FindingEntry] = {}
    for code, raw in _mapping(FINDINGS_FILE).items():
        try:
            out[str(code)] = FindingEntry.model_validate(raw)
        except ValueError as exc:
            raise KnowledgeError(f"findings.yaml: {code}: {exc}") from exc
    return out


@cache
def load_providers() -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    for pid, raw in _mapping(PROVIDERS_FILE).items():
        if not isinstance(raw, dict):
            raise KnowledgeError(f"providers.yaml: {pid}: expected a mapping")
        try:
            out[str(pid)] = Provider.model_validate({"id": str(pid), **raw})
        except ValueError as exc:
            raise KnowledgeError(f"providers.yaml: {pid}: {exc}") from exc
    return out


# --------------------------------------------------------------------------- accessors


def remediation(entry_id: str) -> Remediation:
    """The remediation entry ``entry_id``; KeyError when there is none."""
    try:
        return load_remediation()[entry_id]
    except KeyError:
        raise KeyError(f"no remediation entry {entry_id!r}") from None


def find_remediation(entry_id: str) -> Remediation | None:
    return load_remediation().get(entry_id)


def all_remediation() -> list[Remediation]:
    return list(load_remediation().values())


def finding_text(code: str, lang: str) -> FindingText | None:
    entry = load_findings().get(code)
    if entry is None:
        return None
    use: Lang = "ja" if lang == "ja" else "en"
    return FindingText(
        code=code,
        lang=use,
        severity=entry.severity,
        title=entry.title.get(use),
        detail=entry.detail.get(use),
        remediation=list(entry.remediation),
    )


def reason_info(reason: str) -> ReasonRecord | None:
    return load_reasons().get(reason)


def provider(provider_id: str) -> Provider | None:
    return load_providers().get(provider_id)


def providers() -> list[Provider]:
    return list(load_providers().values())


# --------------------------------------------------------------------------- formatting

_MISSING = "\x00"
_FORMATTER = string.Formatter()
_OPEN = "(（「『[【<"
_CLOSE = ")）」』]】>"
# A short bracketed group that contains an unfilled placeholder goes as a whole:
# "（{count} 件）" / "({count} lookups)" / "「{record}」".
_GROUP_RE = re.compile(
    "[" + re.escape(_OPEN) + "][^" + re.escape(_OPEN + _CLOSE) + "]{0,40}?"
    + _MISSING + "[^" + re.escape(_OPEN + _CLOSE) + "]{0,40}?[" + re.escape(_CLOSE) + "]"
)  # fmt: skip
# "Record: {record}" / "件名: {value}" at the start of a clause: drop the label too.
_LABEL_RE = re.compile(
    r"(^|[。.;；\n]\s*)[^。.;；\n:：()（）]{1,16}[:：]\s*"
    + _MISSING
    + r"\s*(?:[^\s。.;；、,]{1,4}(?=$|[\s。.;；、,]))?"
)
# "...: {target}" elsewhere: drop the colon with it.
_COLON_RE = re.compile(r"\s*[:：]\s*" + _MISSING)
# Japanese: "{target} の..." / "{host} について、" at the start of a clause — drop the
# particle with it. Elsewhere ("MXホスト {host} が") only the placeholder goes.
_JA_LEAD_RE = re.compile(
    r"(^|[。、\n]\s*)" + _MISSING + r"\s*(?:について|から|の|は|が|で|に|を|と)?[、,]?\s*"
)
_JA_ANY_RE = re.compile(r"\s*" + _MISSING + r"\s*")
# English: "for {target}" / "of {host}" / "on {zone}" — drop the preposition with it.
_EN_PREP_RE = re.compile(r"\s*\b(?:for|of|on|at|from|in|by|to|with)\s+" + _MISSING)


def _value_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        items = [str(v) for v in value if v is not None and str(v) != ""]
        return ", ".join(items) if items else None
    text = str(value)
    return text if text != "" else None


def _fill(template: str, evidence: Mapping[str, Any]) -> tuple[str, bool]:
    """Fill ``{key}`` placeholders; unfilled ones become a sentinel.

    Returns the text and whether every placeholder was filled. Never raises:
    a malformed template comes back as-is, marked incomplete.
    """
    parts: list[str] = []
    complete = True
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return template, False
    for literal, field, spec, conversion in parsed:
        parts.append(literal)
        if field is None:
            continue
        value = _value_text(evidence.get(field)) if field.isidentifier() else None
        if value is None:
            complete = False
            parts.append(_MISSING)
            continue
        try:
            if conversion == "r":
                value = repr(value)
            parts.append(format(value, spec or ""))
        except (ValueError, TypeError):
            parts.append(value)
    return "".join(parts), complete


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([。、．，.,;:!?）)」』])", r"\1", text)
    text = re.sub(r"([（(「『])\s+", r"\1", text)
    text = re.sub(r"([。、])\s+", r"\1", text)
    text = re.sub(r"[、,]([。.])", r"\1", text)
    text = re.sub(r"。{2,}", "。", text)  # clauses dropped between two sentences
    return text.strip(" \t、,;:：-–。.")


def _strip_missing(text: str, lang: str) -> str:
    if _MISSING not in text:
        return text
    ends_with_stop = text.rstrip().endswith(("。", "."))
    for _ in range(3):  # nested / adjacent groups
        text = _GROUP_RE.sub("", text)
    text = _LABEL_RE.sub(r"\1", text)
    text = _COLON_RE.sub("", text)
    if lang == "ja":
        text = _JA_LEAD_RE.sub(r"\1", text)
        text = _JA_ANY_RE.sub("", text)
    else:
        text = _EN_PREP_RE.sub("", text)
        text = re.sub(r"\s*" + _MISSING + r"\s*", " ", text)
    text = text.replace(_MISSING, "")
    out = _tidy(text)
    if out and ends_with_stop and not out.endswith(("。", ".")):
        out += "。" if lang == "ja" else "."
    if lang != "ja" and out:
        out = out[0].upper() + out[1:]
    return out


def render_template(template: str, evidence: Mapping[str, Any] | None, lang: str) -> str:
    """Fill a template; unfilled placeholders are removed cleanly (never raises)."""
    filled, _ = _fill(template, evidence or {})
    return _strip_missing(filled, lang)


ENGINE_TEXT_KEYS = frozenset({"error"})  # evidence keys holding an engine's own English
# Evidence keys holding lists of the engine's own short English labels (the sender
# requirements a domain meets or misses); Japanese reports translate each item.
ENGINE_LIST_KEYS = frozenset({"met", "unmet", "unknown", "not_found", "not_visible"})


def _japanese_evidence(ev: Mapping[str, Any]) -> dict[str, Any]:
    from knowledge.detail_phrases import to_japanese

    out: dict[str, Any] = {}
    for k, v in ev.items():
        if k in ENGINE_TEXT_KEYS and isinstance(v, str):
            v = to_japanese(v)
        elif k in ENGINE_LIST_KEYS and isinstance(v, list | tuple):
            items = [to_japanese(str(x)) for x in v if x is not None and str(x) != ""]
            v = "、".join(items) if items else None  # a Japanese list reads 「A、B」, not "A, B"
        out[k] = v
    # A listing's delisting procedure: the engine quotes the list's English text (its
    # detail), the Japanese is in the same knowledge entry.
    if ev.get("delist_procedure") and isinstance(ev.get("zone"), str) and "delist" not in ev:
        from knowledge.blocklists import KnowledgeError, load_blocklists

        try:
            entry = load_blocklists().get(str(ev["zone"]))
        except KnowledgeError:
            entry = None
        if entry is not None and entry.delist.how_ja:
            out["delist"] = entry.delist.how_ja
    return out


def localize_finding(
    code: str,
    lang: str,
    evidence: Mapping[str, Any] | None,
    fallback_title: str,
    fallback_detail: str,
) -> tuple[str, str]:
    """Title and detail of finding ``code`` in ``lang``, filled from ``evidence``.

    - Unknown code: the fallbacks, unchanged.
    - English with a placeholder the evidence lacks: that field's fallback
      (the handler's own English text), or the cleaned template when the
      fallback is empty.
    - Japanese with a placeholder the evidence lacks: the template with the
      unfilled placeholders (and the particle or brackets around them) removed.
    """
    try:
        text = finding_text(code, lang)
    except KnowledgeError:
        text = None
    if text is None:
        return fallback_title, fallback_detail
    ev: Mapping[str, Any] = evidence if isinstance(evidence, Mapping) else {}
    use = text.lang
    if use == "ja":
        # The engines' own English inside the evidence ("the TXT lookup failed: ..."). Only
        # the keys engines fill with their wording: subjects, records and names are quoted
        # material and stay exactly as they were.
        ev = _japanese_evidence(ev)

    def one(template: str, fallback: str) -> str:
        if not template:
            return fallback
        filled, complete = _fill(template, ev)
        if complete:
            return filled
        if use == "en" and fallback:
            return fallback
        return _strip_missing(filled, use)

    return one(text.title, fallback_title), one(text.detail, fallback_detail)
