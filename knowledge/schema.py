"""Pydantic models for the curated knowledge files.

Every YAML file under ``knowledge/`` (except the bounce and blocklist data,
which have their own owners and schemas) is validated against these models
when it is first loaded. A file that does not validate is a bug: the schema
test loads all of them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Lang = Literal["en", "ja"]
Severity = Literal["critical", "warning", "info", "ok", "unknown"]

# Sisimai's reason vocabulary (SPEC.md, "Bounce reason"); one record per reason in
# knowledge/bounce/reasons/.
Reason = Literal[
    "authfailure", "badreputation", "blocked", "contenterror", "delivered", "emailtoolarge",
    "expired", "failedstarttls", "feedback", "filtered", "hasmoved", "hostunknown", "mailboxfull",
    "mailererror", "networkerror", "norelaying", "notaccept", "notcompliantrfc", "onhold",
    "policyviolation", "ratelimited", "rejected", "requireptr", "securityerror", "spamdetected",
    "suppressed", "suspend", "syntaxerror", "systemerror", "systemfull", "undefined",
    "userunknown", "vacation", "virusdetected",
]  # fmt: skip
REASONS: tuple[str, ...] = get_args(Reason)

# Evidence keys a finding template may use (SPEC: evidence dict of a Finding).
PLACEHOLDER_KEYS: frozenset[str] = frozenset(
    {
        "target", "record", "count", "limit", "selector", "bits", "policy", "host", "ip", "ptr",
        "zone", "codes", "meaning", "error", "mode", "value",
        "met", "unmet", "unknown", "not_found", "not_visible",  # sender-requirement items
        "delist", "delist_url",  # a listing's removal procedure and page
        # receiver reports: pass rate, message/session counts, why a source failed (each language)
        "rate", "messages", "failed", "sessions", "period", "reporters", "sources", "provider",
        "result_type", "selectors", "why", "why_ja",
        "when", "reason",  # a whole log's per-provider findings (logs.*)
    }
)  # fmt: skip

_ID_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_URL_RE = re.compile(r"^https?://\S+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """One piece of user-visible text in English and Japanese."""

    en: str = Field(min_length=1)
    ja: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


class TextList(_Strict):
    """An ordered list of texts (steps, behaviours) in English and Japanese."""

    en: list[str] = Field(min_length=1)
    ja: list[str] = Field(min_length=1)

    def get(self, lang: str) -> list[str]:
        return list(self.ja if lang == "ja" else self.en)

    @field_validator("en", "ja")
    @classmethod
    def _no_empty_items(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("empty list item")
        return value


def _check_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not _URL_RE.match(url):
            raise ValueError(f"not an http(s) URL: {url!r}")
    return urls


class CodeBlock(_Strict):
    """Lines the reader copies as they are (a command, a configuration line).

    Shown as a block of its own right after step ``after`` (1-based, the same step
    in both languages), never run into the step's sentence: a command that wraps
    or picks up punctuation can't be pasted. ``label`` names where the lines go
    ("master.cf", "shell"); the lines themselves are not translated.
    """

    after: int = Field(ge=1)
    lines: list[str] = Field(min_length=1)
    label: str = ""

    @field_validator("lines")
    @classmethod
    def _no_blank_lines(cls, value: list[str]) -> list[str]:
        if any(not line.strip() for line in value):
            raise ValueError("empty code line")
        return value


class RemediationText(_Strict):
    """A remediation entry rendered in one language."""

    id: str
    lang: Lang
    title: str
    why: str
    steps: list[str]
    verify: str
    sources: list[str]
    reviewed: date
    related: list[str]
    code: list[CodeBlock] = Field(default_factory=list)

    def steps_with_code(self) -> list[tuple[str, list[CodeBlock]]]:
        """Each step with the code blocks to show right after it."""
        return [(step, [c for c in self.code if c.after == i]) for i, step in enumerate(self.steps, 1)]


class Remediation(_Strict):
    id: str
    title: Text
    why: Text
    steps: TextList
    verify: Text
    sources: list[str] = Field(min_length=1)
    reviewed: date
    related: list[str] = Field(default_factory=list)
    code: list[CodeBlock] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"bad remediation id {value!r}")
        return value

    @field_validator("sources")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _check_urls(value)

    @model_validator(mode="after")
    def _code_after_a_step(self) -> Remediation:
        if self.code and len(self.steps.en) != len(self.steps.ja):
            raise ValueError(f"{self.id}: steps with code blocks need as many en as ja steps")
        for block in self.code:
            if block.after > len(self.steps.en):
                raise ValueError(f"{self.id}: code block after step {block.after}, but there are fewer steps")
        return self

    def steps_with_code(self, lang: str) -> list[tuple[str, list[CodeBlock]]]:
        """Each step in ``lang`` with the code blocks to show right after it."""
        return self.localized(lang).steps_with_code()

    def localized(self, lang: str) -> RemediationText:
        code: Lang = "ja" if lang == "ja" else "en"
        return RemediationText(
            id=self.id,
            lang=code,
            title=self.title.get(code),
            why=self.why.get(code),
            steps=self.steps.get(code),
            verify=self.verify.get(code),
            sources=list(self.sources),
            reviewed=self.reviewed,
            related=list(self.related),
            code=list(self.code),
        )


class FindingEntry(_Strict):
    """Default severity and localized templates for one finding code."""

    severity: Severity
    title: Text
    detail: Text
    remediation: list[str] = Field(default_factory=list)


class FindingText(_Strict):
    """A finding's texts in one language (templates, not yet formatted)."""

    code: str
    lang: Lang
    severity: Severity
    title: str
    detail: str
    remediation: list[str]


class Program(_Strict):
    """A provider's programme or portal (Postmaster Tools, SNDS, a sender form ...)."""

    id: str
    name: str
    url: str
    what: Text

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_urls([value])
        return value


class Requirement(_Strict):
    """A published sender requirement set (e.g. Gmail's 2024 bulk-sender rules)."""

    id: str
    name: Text
    effective: date | None = None
    applies_to: Text
    items: TextList
    sources: list[str] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _check_urls(value)


Basis = Literal["official", "code", "third-party"]


class ProviderCode(_Strict):
    """One provider reply code / text mapped to a Sisimai reason."""

    code: str  # the distinctive token: "5.7.26", "S3140", "TSS04", "OFR006_102" ...
    reply: int | None = None  # SMTP reply code when the source gives one
    status: str | None = None  # enhanced status code when the source gives one
    match: str = ""  # lower-case text fragment that identifies the reply
    reason: Reason
    hard: bool
    meaning: Text
    source: str
    basis: Basis = "official"
    remediation: list[str] = Field(default_factory=list)
    # Set when Sisimai's own classifier files this reply under another reason.
    sisimai_reason: Reason | None = None

    @field_validator("source")
    @classmethod
    def _url(cls, value: str) -> str:
        _check_urls([value])
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("reply")
    @classmethod
    def _reply(cls, value: int | None) -> int | None:
        if value is not None and not 200 <= value <= 599:
            raise ValueError(f"bad SMTP reply code {value}")
        return value


class Provider(_Strict):
    id: str
    name: str
    brands: list[str] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)  # recipient mail domains
    mx: list[str] = Field(default_factory=list)  # MX / reply-host suffixes
    markers: list[str] = Field(default_factory=list)  # text fragments that name the provider
    coverage: Literal["good", "partial", "minimal"]
    behaviour: TextList
    programs: list[Program] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)
    codes: list[ProviderCode] = Field(default_factory=list)
    remediation: list[str] = Field(default_factory=list)
    sources: list[str] = Field(min_length=1)
    reviewed: date

    @field_validator("sources")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _check_urls(value)

    @model_validator(mode="after")
    def _lower_case(self) -> Provider:
        for value in (*self.domains, *self.mx, *self.markers):
            if value != value.lower():
                raise ValueError(f"{self.id}: patterns must be lower-case: {value!r}")
        return self
