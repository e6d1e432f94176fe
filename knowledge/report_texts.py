"""Phrases of receiver-report summaries (``report_texts.yaml``), in English and Japanese,
and the sending services a source's PTR name points to (``sending_services.yaml``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from knowledge.digest_texts import Template, fill, read_texts
from knowledge.loader import KnowledgeError
from knowledge.yamlload import YAMLError, load_yaml

BASE = Path(__file__).resolve().parent
REPORT_TEXTS_FILE = BASE / "report_texts.yaml"
SERVICES_FILE = BASE / "sending_services.yaml"


@cache
def load_report_texts() -> dict[str, dict[str, Template]]:
    return read_texts(REPORT_TEXTS_FILE)


def report_text(key: str, lang: str, /, **params: Any) -> str:
    """The phrase ``key`` in ``lang``; a missing parameter is removed cleanly."""
    return fill(load_report_texts(), key, lang, params)


class SendingService(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    ptr: list[str] = Field(min_length=1)  # PTR name suffixes, lower case
    source: str


@cache
def load_sending_services() -> tuple[SendingService, ...]:
    try:
        with SERVICES_FILE.open(encoding="utf-8") as fh:
            data = load_yaml(fh)
    except (OSError, YAMLError) as exc:
        raise KnowledgeError(f"{SERVICES_FILE.name}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise KnowledgeError(f"{SERVICES_FILE.name}: expected services: [...]")
    try:
        return tuple(SendingService.model_validate(x) for x in data["services"])
    except ValueError as exc:
        raise KnowledgeError(f"{SERVICES_FILE.name}: {exc}") from exc


@cache
def _suffixes() -> tuple[tuple[str, str], ...]:
    pairs = [(suffix.lower().strip("."), s.name) for s in load_sending_services() for suffix in s.ptr]
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))  # the most specific suffix wins


def service_for_ptr(name: str) -> str | None:
    """The sending service or provider whose PTR names end in `name`'s suffix."""
    host = name.lower().rstrip(".")
    for suffix, service in _suffixes():
        if host == suffix or host.endswith("." + suffix):
            return service
    return None
