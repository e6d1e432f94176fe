"""Japanese for the English phrases engines put inside evidence (``detail_phrases.yaml``).

Finding templates are translated whole; their placeholders, though, are filled
with what the engines recorded, such as "the TXT lookup failed: the resolver
answered SERVFAIL". This rewrites those known phrases so a Japanese report does not
switch language mid-sentence. Unknown text passes through unchanged.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from knowledge.yamlload import load_yaml

PHRASES_FILE = Path(__file__).resolve().parent / "detail_phrases.yaml"
_SLOT = re.compile(r"\{([a-z_]+)\}")
# One token: no spaces or separators, bounded (a slot must not rescan a long word from
# every position), and starting at a boundary.
_BOUNDARY = r"(?<![^\s:;,()（）])"
_TOKEN = r"[^\s:;,()（）]{1,255}"
# A placeholder named quoted_* matches one single-quoted value as Python's repr writes
# it ('ip4:192.0.2.300'): SPF terms hold colons and slashes.
_QUOTED = r"'[^'\n]{0,255}'"
_JA_PERIOD = re.compile(r"(?<=[\u3040-\u30ff\u3400-\u9fff）」])\.(?: |$)")


class Phrase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    en: str
    ja: str

    @field_validator("ja")
    @classmethod
    def _same_slots(cls, ja: str, info: ValidationInfo) -> str:
        en = str(info.data.get("en", ""))
        if sorted(_SLOT.findall(ja)) != sorted(_SLOT.findall(en)):
            raise ValueError(f"ja must use exactly the placeholders of en: {en!r} / {ja!r}")
        return ja


class PhraseSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phrases: list[Phrase]


def _pattern(en: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _SLOT.finditer(en):
        out.append(re.escape(en[pos : m.start()]))
        slot = _QUOTED if m.group(1).startswith("quoted") else _TOKEN
        out.append(f"{_BOUNDARY}(?P<{m.group(1)}>{slot})")
        pos = m.end()
    out.append(re.escape(en[pos:]))
    return re.compile("".join(out))


@cache
def load_phrases() -> list[tuple[re.Pattern[str], str]]:
    data = PhraseSet.model_validate(load_yaml(PHRASES_FILE.read_text(encoding="utf-8")))
    ordered = sorted(data.phrases, key=lambda p: len(p.en), reverse=True)  # the most specific first
    return [(_pattern(p.en), _SLOT.sub(r"\\g<\1>", p.ja)) for p in ordered]


@cache
def _blocklist_phrases() -> list[tuple[str, str]]:
    """The shipped blocklists' refusal hints and error meanings (knowledge/blocklists.yaml),
    which the blocklist engine quotes in its English detail. Longest first."""
    from knowledge.blocklists import KnowledgeError, default_blocklists

    try:
        lists = default_blocklists().lists
    except KnowledgeError:
        return []
    pairs: dict[str, str] = {}
    for entry in lists:
        pairs.update(entry.japanese_phrases())
    return sorted(pairs.items(), key=lambda p: len(p[0]), reverse=True)


def to_japanese(text: str) -> str:
    """`text` with every known English phrase in Japanese."""
    if not text or not text.isascii():
        return text  # nothing of ours to rewrite (or already localised)
    for en, ja in _blocklist_phrases():
        if en in text:
            text = text.replace(en, ja)
    for pattern, repl in load_phrases():
        text = pattern.sub(repl, text)
    # Sentences the engine joined with ". " read as Japanese sentences once translated.
    return _JA_PERIOD.sub("。", text)
