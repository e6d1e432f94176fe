"""The texts of scheduled digests (``digest_texts.yaml``), in English and Japanese.

Each key maps to ``{en: ..., ja: ...}``. A language's text is either a template
string or, where English needs a plural, ``{one: ..., other: ...}`` chosen by the
``n`` parameter. Placeholders are ``{name}``; values are filled as given (the
caller escapes them for Slack). Loaded and validated once, on first use.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from knowledge.loader import KnowledgeError, render_template
from knowledge.yamlload import YAMLError, load_yaml

DIGEST_TEXTS_FILE = Path(__file__).resolve().parent / "digest_texts.yaml"
LANGS = ("en", "ja")
PLURAL_FORMS = ("one", "other")

Template = str | dict[str, str]  # a template, or {one, other}


def _valid_template(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return (isinstance(value, dict) and set(value) == set(PLURAL_FORMS)
            and all(isinstance(v, str) and v.strip() for v in value.values()))


def read_texts(path: Path) -> dict[str, dict[str, Template]]:
    """{key: {lang: template}} from a texts file; KnowledgeError when a key lacks a
    language or is malformed. Shared by every en/ja texts file of the knowledge base."""
    try:
        with path.open(encoding="utf-8") as fh:
            data = load_yaml(fh)
    except (OSError, YAMLError) as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path.name}: expected a mapping at top level")
    out: dict[str, dict[str, Template]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != set(LANGS):
            raise KnowledgeError(f"{path.name}: {key}: expected exactly the languages {LANGS}")
        for lang in LANGS:
            if not _valid_template(entry[lang]):
                raise KnowledgeError(f"{path.name}: {key}.{lang}: expected a non-empty text or {{one, other}}")
        out[str(key)] = {lang: entry[lang] for lang in LANGS}
    return out


@cache
def load_digest_texts() -> dict[str, dict[str, Template]]:
    return read_texts(DIGEST_TEXTS_FILE)


def fill(texts: dict[str, dict[str, Template]], key: str, lang: str, params: dict[str, Any]) -> str:
    use = "ja" if lang == "ja" else "en"
    template = texts[key][use]
    if isinstance(template, dict):
        template = template["one" if params.get("n") == 1 else "other"]
    return render_template(template, params, use)


def digest_text(key: str, lang: str, /, **params: Any) -> str:
    """The digest text ``key`` in ``lang`` (en unless 'ja'), filled from ``params``.

    Never raises for a known key: a missing parameter is removed cleanly
    (as for finding texts). An unknown key raises KeyError — a bug, caught by tests.
    """
    return fill(load_digest_texts(), key, lang, params)
