"""Bounce-analysis knowledge: typed loader for the YAML files beside this module.

The analyser in ``handlers/bounce`` is generic; everything it knows about
reasons, providers and MTA formats lives in these files:

- ``reasons/<reason>.yaml``: one record per reason of Sisimai's vocabulary (its
  texts en/ja, whether the address is dead, severity, remediation, likely causes
  and the phrases that name it); see ``records.py``.
- ``reason_order.yaml``: the order in which the reasons' phrases are tried.
- ``reasons_by_status.yaml``: RFC 3463 status / reply code -> reason.
- ``mta_formats.yaml``: markers of non-standard bounce texts (where the returned
  message starts, how recipients are introduced, SMTP command hints, log formats).
- ``explanations.yaml``: the analysis's notes that belong to no one reason (en/ja).
- ``providers/*.yaml``: one file per receiving provider: how to recognise it and
  rows of (reply, status, text fragment) -> reason + remediation ids + source URL.

Adding a provider means adding a YAML file. Files are read once, lazily, and
every pattern is compiled at load time; a file that does not validate raises
at first use (the test suite loads them all).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.bounce.records import PhraseRule, ReasonRecord, load_reasons, read_reasons
from knowledge.bounce.records import check_reason as _check_reason
from knowledge.schema import REASONS  # the one copy of Sisimai's reason vocabulary

HERE = Path(__file__).resolve().parent


# Provider-specific remediation ids other modules may reference (the texts live in
# knowledge/remediation/). `bounce.<reason>` ids are always allowed.
PROVIDER_REMEDIATION_IDS: frozenset[str] = frozenset(
    {
        "provider.google.postmaster_tools", "provider.google.sender_guidelines",
        "provider.google.not_authorized", "provider.microsoft.snds_jmrp",
        "provider.microsoft.delist", "provider.microsoft.consumer_silent_drop",
        "provider.microsoft.requirements_5_7_515", "provider.yahoo.sender_hub",
        "provider.apple.postmaster", "provider.jp_carrier.filters", "provider.docomo.filters",
        "provider.kddi.filters", "provider.softbank.filters", "postfix.ipv4_only_smtp",
        "ptr.set_reverse_dns", "blocklist.delist", "spf.add_record", "dkim.publish_key",
        "dmarc.publish",
    }
)  # fmt: skip

_STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_REPLY_RE = re.compile(r"^[245]\d\d$")


def _check_remediation(ids: list[str]) -> list[str]:
    for rid in ids:
        if rid.startswith("bounce.") and rid[7:] in REASONS:
            continue
        if rid not in PROVIDER_REMEDIATION_IDS:
            raise ValueError(f"remediation id {rid!r} is not in the agreed list")
    return ids


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------ phrase order
class ClassOrder(_Strict):
    probe: list[str]
    fallback: list[str]

    @field_validator("probe", "fallback")
    @classmethod
    def _reasons(cls, value: list[str]) -> list[str]:
        return [_check_reason(v) for v in value]


class ReasonOrder(_Strict):
    source: str
    order: ClassOrder


class TextRules:
    """The reasons' phrase rules (from their records) and the order they are tried in."""

    def __init__(self, order: ReasonOrder, records: dict[str, ReasonRecord]) -> None:
        self.source = order.source
        self.order = order.order
        self.reasons: dict[str, PhraseRule] = {r: rec.phrases for r, rec in records.items() if rec.phrases}
        unruled = [r for r in (*self.order.probe, *self.order.fallback) if r not in self.reasons]
        if unruled:
            raise ValueError(f"reason_order.yaml names reasons without phrases: {unruled}")

    def match(self, reason: str, text: str) -> bool:
        rule = self.reasons.get(reason)
        return rule.matches(text) if rule else False


# ---------------------------------------------------------- status -> reason
class StatusTable(_Strict):
    source: str
    rfc: str
    status: dict[str, str]
    reply_codes: dict[str, str]

    @field_validator("status", "reply_codes")
    @classmethod
    def _reasons(cls, value: dict[str, str]) -> dict[str, str]:
        for code, reason in value.items():
            if not (_STATUS_RE.match(code) or _REPLY_RE.match(code)):
                raise ValueError(f"bad code {code!r}")
            _check_reason(reason)
        return value

    def name(self, status: str | None) -> str:
        return self.status.get(status or "", "")


# ------------------------------------------------------------------ providers
_LOOSE = str.maketrans({"-": " ", "_": " ", "\u2019": "'", "\u2018": "'", "\t": " ", "\n": " ", "\r": " "})
_SPACES = re.compile(r" {2,}")


def loose(text: str) -> str:
    """Lower-case `text` with the differences that vary between copies of one reply made
    equal: "header-based" / "header based", "wasn’t" / "wasn't", a reply wrapped or
    re-spaced by a mail client or chat window. Provider rule texts and the reply they are
    matched against both go through it."""
    return _SPACES.sub(" ", text.lower().translate(_LOOSE))


class ProviderRule(_Strict):
    reason: str
    text: str = ""
    code: str = ""  # regex for a provider's own code such as "TSS04" or "AUP#CXBL" (case-sensitive)
    reply: str = ""
    status: str = ""
    # The SMTP command the reply answered (RCPT, DATA ...), when the provider's meaning
    # depends on it (NTT docomo: "550 Unknown user" after DATA is a filter, not a user).
    command: str = ""
    remediation: list[str] = Field(default_factory=list)
    source: str = ""
    note: str = ""
    note_ja: str = ""  # the same note in Japanese (shown for --lang ja)

    _check = field_validator("reason")(classmethod(lambda cls, v: _check_reason(v)))
    _rem = field_validator("remediation")(classmethod(lambda cls, v: _check_remediation(v)))

    @field_validator("text")
    @classmethod
    def _lower(cls, value: str) -> str:
        return loose(value)

    @model_validator(mode="after")
    def _needs_something(self) -> ProviderRule:
        if not (self.text or self.code):
            raise ValueError("a provider rule needs `text` or `code`")
        if self.status and not _STATUS_RE.match(self.status):
            raise ValueError(f"bad status {self.status!r}")
        if self.reply and not _REPLY_RE.match(self.reply):
            raise ValueError(f"bad reply code {self.reply!r}")
        if self.note and not self.note_ja:
            raise ValueError("a rule's note needs its Japanese text (note_ja) too")
        return self

    def matches(
        self, lowered: str, original: str, reply: int | None, status: str | None, command: str = ""
    ) -> bool:
        if self.command and self.command != command:
            return False
        if self.text and self.text not in lowered:
            return False
        if self.code and not _code_re(self.code).search(original):
            return False
        # Like Sisimai: the class digit (4/5) is ignored, the rest must agree when given.
        if self.status and status and self.status[1:] != status[1:]:
            return False
        if self.status and not status and self.reply and reply is None:
            return False
        return not (self.reply and reply is not None and self.reply[1:] != str(reply)[1:])


@lru_cache(maxsize=512)
def _code_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class ProviderDetect(_Strict):
    hosts: list[str] = Field(default_factory=list)  # regexes on a host name (MX, relay, HELO, host in the reply)
    text: list[str] = Field(default_factory=list)  # markers in the reply text (case-insensitive substrings)
    codes: list[str] = Field(default_factory=list)  # regexes on the original reply (provider codes)
    # The provider's name as prose writes it ("google's", "outlook.com", "yahoo mail"):
    # plain lower-case strings, matched as whole words. Only names that cannot be an
    # ordinary word ("live", "free", "orange" are words; "outlook.com", "free.fr" are not).
    names: list[str] = Field(default_factory=list)
    # Regexes (case-insensitive) for this provider's own boilerplate when IT is the
    # sending side ("Google tried to deliver your message ..."): cut from the text
    # before looking for evidence, so the sender's notice does not name the receiver.
    notice: list[str] = Field(default_factory=list)
    recipient_domains: list[str] = Field(default_factory=list)

    @field_validator("hosts", "codes", "notice")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {pattern!r}: {exc}") from exc
            if compiled.groupindex:
                raise ValueError(f"named groups are reserved for the index: {pattern!r}")
        return value

    @field_validator("recipient_domains", "text", "names", "notice")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        # Matched against the lower-cased text: lower-case patterns need no re.I,
        # which keeps Python's literal-prefix search fast.
        return [v.lower() for v in value]


class Provider(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    # Other names the provider goes by in prose (brands, former names); the advice
    # test uses them to check that no shown step names another provider.
    aliases: list[str] = Field(default_factory=list)
    # A filtering gateway in front of the recipient's own mailbox host (Mimecast,
    # Proofpoint ...): when the reply names both, the gateway produced it.
    gateway: bool = False
    detect: ProviderDetect
    remediation: list[str] = Field(default_factory=list)
    source: str = Field(pattern=r"^https?://")
    help: list[str] = Field(default_factory=list)  # the provider's own postmaster/help pages
    rules: list[ProviderRule] = Field(default_factory=list)
    # Extra remediation for `delivered` (accepted by this provider's MX).
    delivered_remediation: list[str] = Field(default_factory=list)
    delivered_note: str = ""

    _rem = field_validator("remediation", "delivered_remediation")(
        classmethod(lambda cls, v: _check_remediation(v))
    )

    @field_validator("help")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"help must be URLs: {url!r}")
        return value


class CompiledProvider:
    """A provider with its detection patterns compiled once."""

    def __init__(self, spec: Provider) -> None:
        self.spec = spec
        self.id = spec.id
        self.host_res = [re.compile(p, re.I) for p in spec.detect.hosts]
        self.code_res = [re.compile(p) for p in spec.detect.codes]
        self.text_markers = list(spec.detect.text)
        self.domains = set(spec.detect.recipient_domains)

    def host_matches(self, host: str) -> bool:
        return bool(host) and any(r.search(host) for r in self.host_res)

    def text_matches(self, lowered: str, original: str) -> bool:
        if any(m in lowered for m in self.text_markers):
            return True
        return any(r.search(original) for r in self.code_res)


def _alternation(groups: list[tuple[str, list[str]]], flags: int = 0) -> re.Pattern[str] | None:
    # One regex for the host patterns that are not plain suffixes, one named group
    # per provider; it runs on single host names only. `m.lastgroup` names the provider.
    parts = [f"(?P<p_{pid}>{'|'.join(f'(?:{p})' for p in pats)})" for pid, pats in groups if pats]
    return re.compile("|".join(parts), flags) if parts else None


_LABELS = r"[a-z0-9-]+(?:\\\.[a-z0-9-]+)*"
# "(?:^|\.)google\.com$" / "\.prod\.outlook\.com$" / "msmx\.au\.com$", with at most one
# group of literal alternatives: "(?:^|\.)gmx\.(?:net|com|de)$".
_SUFFIX_PATTERN = re.compile(
    rf"^(?P<anchor>\(\?:\^\|\\\.\)|\\\.)?(?P<head>(?:{_LABELS}\\\.)?)"
    rf"(?:\(\?:(?P<alts>{_LABELS}(?:\|{_LABELS})*)\))?(?P<tail>(?:\\\.{_LABELS}|{_LABELS})?)\$$"
)


def _host_suffixes(pattern: str) -> tuple[list[str], bool] | None:
    r"""The literal host suffixes a simple host pattern stands for, and whether the
    bare suffix itself matches too (not for "\.x\.com$", subdomains only); None
    for patterns that need the regex engine (classes, look-arounds, repeats)."""
    m = _SUFFIX_PATTERN.match(pattern)
    if m is None:
        return None
    head, tail = m["head"], m["tail"]
    alts = m["alts"].split("|") if m["alts"] else [""]
    out = [(head + a + tail).replace("\\.", ".") for a in alts]
    if any(not o or o.startswith(".") or o.endswith(".") for o in out):
        return None
    return out, m["anchor"] != "\\."


_ALNUM = re.compile(r"[a-z0-9]+")


def words_of(low: str) -> set[str]:
    """The runs of ASCII letters and digits in a lower-case text."""
    return set(_ALNUM.findall(low))


def word_key(literal: str, *, whole_word: bool) -> str | None:
    """A run of letters/digits that is a whole word of any text containing `literal`.

    For a name matched as a whole word (nothing alphanumeric around it), its first run
    is one. For a plain substring marker only a run with a non-alphanumeric character on
    both sides inside the marker is ("ms" in "aka.ms/"); None when there is none, and
    the marker is then always searched.
    """
    low = literal.lower()
    runs = list(_ALNUM.finditer(low))
    if whole_word:
        return runs[0].group(0) if runs else None
    inner = [m.group(0) for m in runs if m.start() > 0 and m.end() < len(low)]
    return max(inner, key=len) if inner else None


class ProviderIndex:
    """All providers' detection data, compiled once.

    Host patterns are one alternation (applied to short host names only). Code
    patterns are run one by one: each starts with a literal, so `re` skips through
    the text with a fast prefix search, which a combined alternation would lose.
    Names and markers are plain substrings (str.find).
    """

    def __init__(self, providers: list[CompiledProvider]) -> None:
        self.by_id = {p.id: p for p in providers}
        specs = [(p.id, p.spec.detect) for p in providers]
        # Host patterns: most are plain suffixes ("(?:^|\.)google\.com$"), looked up
        # label by label in a dict; only the rest go through one regex.
        self.suffixes: dict[str, tuple[CompiledProvider, bool]] = {}
        rest: list[tuple[str, list[str]]] = []
        for p in providers:
            others: list[str] = []
            for pattern in p.spec.detect.hosts:
                found = _host_suffixes(pattern)
                if found is None:
                    others.append(pattern)
                    continue
                for suffix in found[0]:
                    self.suffixes.setdefault(suffix, (p, found[1]))
            rest.append((p.id, others))
        self.hosts = _alternation(rest, re.I)
        self.codes: list[tuple[re.Pattern[str], CompiledProvider]] = [
            (re.compile(c), p) for p in providers for c in p.spec.detect.codes
        ]
        self.names: list[tuple[str, CompiledProvider]] = [(n, p) for p in providers for n in p.spec.detect.names]
        notices = [n for _pid, d in specs for n in d.notice]
        self.notice = re.compile("|".join(f"(?:{n})" for n in notices)) if notices else None
        self.markers: list[tuple[str, CompiledProvider]] = [
            (m, p) for p in providers for m in p.text_markers
        ]
        # A word each name or marker can't occur without, so a text is searched only for
        # those whose word it contains (see word_key): 200 str.find calls per reply were a
        # fifth of the bounce analysis.
        self.name_keys = [word_key(n, whole_word=True) for n, _p in self.names]
        self.marker_keys = [word_key(m, whole_word=False) for m, _p in self.markers]
        self.domains: dict[str, CompiledProvider] = {}
        for p in providers:
            for d in p.domains:
                if d in self.domains:
                    raise ValueError(f"recipient domain {d!r} claimed by two providers")
                self.domains[d] = p

    def host(self, host: str) -> CompiledProvider | None:
        if not host:
            return None
        host = host.lower()
        at = 0
        while True:  # "a.b.example.com", "b.example.com", "example.com", "com"
            hit = self.suffixes.get(host[at:])
            if hit is not None and (at > 0 or hit[1]):
                return hit[0]
            dot = host.find(".", at)
            if dot < 0:
                break
            at = dot + 1
        if self.hosts is None:
            return None
        m = self.hosts.search(host)
        return self.by_id[m.lastgroup[2:]] if m and m.lastgroup else None

    def domain(self, domain: str) -> CompiledProvider | None:
        """The provider whose mail domain `domain` is (or is under: x.dion.ne.jp)."""
        labels = domain.lower().strip(".").split(".")
        for i in range(len(labels) - 1):
            p = self.domains.get(".".join(labels[i:]))
            if p is not None:
                return p
        return None


# ----------------------------------------------------------------- MTA formats
class LogFormat(_Strict):
    name: str
    pattern: str


class MtaFormats(_Strict):
    source: str
    bounce_senders: list[str]
    bounce_subjects: list[str]
    original_message_markers: list[str]
    boilerplate: list[str]
    recipient_intro: list[str]
    commands: dict[str, list[str]]
    delayed_markers: list[str]
    expired_markers: list[str]
    autoreply_subjects: list[str]
    feedback_subjects: list[str] = Field(default_factory=list)
    reasons_by_phrase: dict[str, list[str]] = Field(default_factory=dict)
    codeless_reasons: dict[str, list[str]] = Field(default_factory=dict)
    # Vendor DSN fields that carry the MTA's own bounce category, e.g.
    # "X-PowerMTA-BounceCategory: bad-mailbox": field (lower-case) -> value -> reason.
    dsn_field_reasons: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Subjects that carry the MTA's verdict when its text carries none (Sendmail's
    # "Returned mail: User unknown"): lower-case subject prefix -> reason.
    subject_reasons: dict[str, str] = Field(default_factory=dict)

    @field_validator("subject_reasons")
    @classmethod
    def _subject_reasons(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            _check_reason(name)
        return {k.lower(): v for k, v in value.items()}

    @field_validator("dsn_field_reasons")
    @classmethod
    def _field_reasons(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table in value.values():
            for name in table.values():
                _check_reason(name)
        return {k.lower(): {v.lower(): r for v, r in t.items()} for k, t in value.items()}

    @field_validator("reasons_by_phrase", "codeless_reasons")
    @classmethod
    def _reasons(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            _check_reason(name)
        return {k: [p.lower() for p in v] for k, v in value.items()}


# ---------------------------------------------------------------- explanations
class NoteText(_Strict):
    en: str
    ja: str = ""


class Explanations(_Strict):
    """Notes of an analysis that belong to no one reason (the reasons' own texts are
    in their records)."""

    delivered_note: NoteText
    not_a_bounce: NoteText
    truncated: NoteText
    delays: NoteText
    recipient_masked: NoteText
    sender_ipv6: NoteText


# ---------------------------------------------------------------------- loader
def _read(path: Path) -> object:
    from knowledge.yamlload import load_yaml  # libyaml's parser: start-up time matters

    with path.open(encoding="utf-8") as fh:
        return load_yaml(fh)


class BounceKnowledge:
    def __init__(self, base: Path = HERE) -> None:
        self.reasons = load_reasons() if base == HERE else read_reasons(base / "reasons")
        self.text_rules = TextRules(ReasonOrder.model_validate(_read(base / "reason_order.yaml")), self.reasons)
        self.status = StatusTable.model_validate(_read(base / "reasons_by_status.yaml"))
        self.formats = MtaFormats.model_validate(_read(base / "mta_formats.yaml"))
        self.explanations = Explanations.model_validate(_read(base / "explanations.yaml"))
        providers = [Provider.model_validate(_read(p)) for p in sorted((base / "providers").glob("*.yaml"))]
        ids = [p.id for p in providers]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate provider id")
        self.providers = [CompiledProvider(p) for p in providers]
        self.by_id = {p.id: p for p in self.providers}
        self.provider_index = ProviderIndex(self.providers)


@lru_cache(maxsize=1)
def load() -> BounceKnowledge:
    """The knowledge base, read and validated once per process."""
    return BounceKnowledge()


__all__ = [
    "PROVIDER_REMEDIATION_IDS",
    "REASONS",
    "BounceKnowledge",
    "CompiledProvider",
    "Provider",
    "ProviderIndex",
    "ProviderRule",
    "ReasonRecord",
    "load",
]
