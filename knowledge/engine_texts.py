"""Engine texts in English and Japanese (``engine_texts.yaml``): short phrases the
engines put in reports outside the finding templates, such as why a blocklist row
is unknown. Same format and validation as the digest texts."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from knowledge.digest_texts import Template, fill, read_texts

ENGINE_TEXTS_FILE = Path(__file__).resolve().parent / "engine_texts.yaml"


@cache
def load_engine_texts() -> dict[str, dict[str, Template]]:
    return read_texts(ENGINE_TEXTS_FILE)


def engine_text(key: str, lang: str, /, **params: Any) -> str:
    """The text ``key`` in ``lang`` (en unless 'ja'); KeyError for an unknown key (a bug)."""
    return fill(load_engine_texts(), key, lang, params)
