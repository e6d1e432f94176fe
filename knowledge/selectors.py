"""Common DKIM selectors tried by discovery (data in dkim_selectors.yaml)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_FILE = Path(__file__).resolve().parent / "dkim_selectors.yaml"


@lru_cache(maxsize=1)
def dkim_selectors() -> tuple[str, ...]:
    from knowledge.yamlload import load_yaml

    data = load_yaml(_FILE.read_text(encoding="utf-8"))
    return tuple(str(s) for s in data["selectors"])
