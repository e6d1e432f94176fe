"""Typed loader for ``knowledge/blocklists.yaml`` (the list of lists).

The YAML is validated once (pydantic) on first use. Which lists a run uses:

- the default file shipped here, or
- ``MAILCHECK_BLOCKLISTS=/path/file.yaml`` in the same schema. Its top-level
  ``mode`` says how it combines with the defaults: ``extend`` (default) merges
  its ``lists`` by zone (same zone = replaces ours, new zones are added, an
  entry with ``enabled: false`` switches a default list off); ``replace`` uses
  only its lists. Zones recorded as defunct (ours or theirs) are never queried.

Keys: an entry's ``key`` names an environment variable (e.g.
``MAILCHECK_SPAMHAUS_DQS_KEY``); when it is set the list is queried at the key
zone (``{key}.zen.dq.spamhaus.net``) instead of its public zone; lists with
``key.required: true`` are skipped without it. The key never leaves
:meth:`BlocklistEntry.query_zone` (results name the public zone).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.yamlload import YAMLError, load_yaml

BLOCKLISTS_FILE = Path(__file__).resolve().parent / "blocklists.yaml"
ENV_FILE = "MAILCHECK_BLOCKLISTS"

Kind = Literal["ip4", "ip6", "domain"]
Weight = Literal["critical", "warning", "info", "neutral", "good"]
Role = Literal["sending", "mx", "url", "domain"]
Purpose = Literal["block", "allow", "reputation"]
Procedure = Literal[
    "self-service", "expires", "isp-only", "form", "operator-contact", "paid", "mixed", "none", "unknown"
]  # fmt: skip
Confidence = Literal["official", "code", "3p", "unverified"]

# Weights that make a "listed" verdict; the others (neutral, good) never do.
BLOCKING_WEIGHTS: tuple[str, ...] = ("critical", "warning", "info")
WEIGHT_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2, "neutral": 3, "good": 4}

# RFC 5782 section 5 test points, per kind of list.
RFC5782_POINTS: dict[str, tuple[list[str], list[str]]] = {
    "ip4": (["127.0.0.2"], ["127.0.0.1"]),
    "ip6": (["::ffff:7f00:2"], ["::ffff:7f00:1"]),
    "domain": (["test"], ["invalid"]),
}

LOOPBACK_NET = ipaddress.IPv4Network("127.0.0.0/8")
_ZONE_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$")


class KnowledgeError(ValueError):
    """The blocklist file is missing, unreadable or does not validate."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_code_text(value: str) -> None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"return code {value!r} is not an IPv4 address or network") from exc
    if net.version != 4 or not net.subnet_of(LOOPBACK_NET):
        raise ValueError(f"return code {value!r} must be inside 127.0.0.0/8")


class ReturnCode(_Strict):
    """One answer value. ``code`` is an IPv4 address or network inside
    127.0.0.0/8, or (on bitmask lists) a bit value of the last octet."""

    code: str
    meaning: str = Field(min_length=3)
    meaning_ja: str = ""  # the same in Japanese (reports in Japanese); "" = English is shown
    weight: Weight
    # Severity depends on what the target is (PBL on a receiving MX is informational).
    by_role: dict[Role, Weight] = Field(default_factory=dict)

    def weight_for(self, role: str) -> Weight:
        return self.by_role.get(role, self.weight)  # type: ignore[call-overload]


class ErrorText(_Strict):
    """What one of a list's error answers means, in English and Japanese."""

    en: str = Field(min_length=3)
    ja: str = Field(min_length=1)


def _error_en(meaning: str | ErrorText) -> str:
    return meaning.en if isinstance(meaning, ErrorText) else meaning


class TestPoints(_Strict):
    listed: list[str] = Field(default_factory=list)
    not_listed: list[str] = Field(default_factory=list)


class KeyConfig(_Strict):
    env: str = Field(pattern=r"^MAILCHECK_[A-Z0-9_]+$")
    zone: str
    required: bool = False

    @field_validator("zone")
    @classmethod
    def _has_placeholder(cls, v: str) -> str:
        if "{key}" not in v:
            raise ValueError("key zone must contain {key}")
        return v


class Delist(_Strict):
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    procedure: Procedure = "unknown"
    how: str = ""
    how_ja: str = ""  # the same in Japanese; "" = the English is shown


class BlocklistEntry(_Strict):
    zone: str
    name: str
    operator: str = ""
    kind: list[Kind] = Field(min_length=1)
    purpose: Purpose = "block"
    lists: str = Field(min_length=3)
    codes: list[ReturnCode] = Field(default_factory=list)
    # True: an answer that is not in `codes` is treated as unknown, not listed.
    strict_codes: bool = False
    bitmask: bool = False
    # An error answer's meaning: plain English (user files), or {en, ja}.
    error_codes: dict[str, str | ErrorText] = Field(default_factory=dict)
    error_bits: dict[int, str | ErrorText] = Field(default_factory=dict)
    test_points: TestPoints | Literal["rfc5782", "none"] = "rfc5782"
    score: bool = False  # last octet of the answer is a 0-100 score (Sender Score)
    key: KeyConfig | None = None
    registration: str = ""
    usage_limits: str = ""
    refused_hint: str = ""
    refused_hint_ja: str = ""  # the same in Japanese; "" = the English is shown
    delist: Delist = Field(default_factory=Delist)
    informational: bool = False
    txt: bool = True  # fetch a TXT reason for listed targets
    max_qps: float = Field(default=200.0, gt=0)
    max_in_flight: int = Field(default=32, ge=1)
    enabled: bool = True
    sources: list[str] = Field(default_factory=list)
    confidence: Confidence = "unverified"
    reviewed: date | None = None

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        v = v.strip().rstrip(".").lower()
        if not _ZONE_RE.match(v):
            raise ValueError(f"not a DNS zone name: {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> BlocklistEntry:
        if "domain" in self.kind and len(self.kind) > 1:
            raise ValueError("a list is either a domain list or an IP list")
        for rc in self.codes:
            if self.bitmask:
                if not rc.code.isdigit() or not 0 < int(rc.code) < 256:
                    raise ValueError(f"bitmask code {rc.code!r} must be a bit value 1..255")
            else:
                _check_code_text(rc.code)
        for code in self.error_codes:
            _check_code_text(code)
        if self.purpose == "block" and not any(rc.weight in BLOCKING_WEIGHTS for rc in self.codes):
            raise ValueError("a block list needs at least one code with a blocking weight")
        return self

    # ------------------------------------------------------------------
    @property
    def is_domain_list(self) -> bool:
        return self.kind == ["domain"]

    def supports(self, family: str) -> bool:
        return family in self.kind

    def query_zone(self, env: Mapping[str, str] | None = None) -> str | None:
        """Zone to put after the target in queries; None = do not query (key missing).

        With a key this contains the secret: never show it to users.
        """
        env = os.environ if env is None else env
        if self.key is not None:
            key = env.get(self.key.env, "").strip()
            if key:
                return self.key.zone.format(key=key).lower()
            if self.key.required:
                return None
        return self.zone

    def points_for(self, family: str) -> tuple[list[str], list[str]]:
        """(must be listed, must not be listed) targets for `family`; empty = none published."""
        if self.test_points == "none":
            return [], []
        if self.test_points == "rfc5782":
            listed, not_listed = RFC5782_POINTS[family]
            return list(listed), list(not_listed)
        fam_ok = [t for t in self.test_points.listed if _family_of(t) == family]
        fam_not = [t for t in self.test_points.not_listed if _family_of(t) == family]
        return fam_ok, fam_not

    def error_for(self, addr: str) -> str | None:
        """The operator's error meaning when `addr` is in its error range."""
        ip = ipaddress.IPv4Address(addr)
        for code, meaning in self.error_codes.items():
            if ip in ipaddress.ip_network(code):
                return _error_en(meaning)
        if self.bitmask and self.error_bits:
            last = int(addr.rsplit(".", 1)[1])
            for bit, meaning in self.error_bits.items():
                if last & bit:
                    return _error_en(meaning)
        return None

    def japanese_phrases(self) -> dict[str, str]:
        """This list's English explanations that engines quote, with their Japanese."""
        out: dict[str, str] = {}
        if self.refused_hint and self.refused_hint_ja:
            out[self.refused_hint] = self.refused_hint_ja
        for meaning in (*self.error_codes.values(), *self.error_bits.values()):
            if isinstance(meaning, ErrorText):
                out[meaning.en] = meaning.ja
        return out

    def match(self, addr: str) -> list[ReturnCode]:
        """Return codes that explain `addr` (most specific first; bitmask: every bit set)."""
        ip = ipaddress.IPv4Address(addr)
        if self.bitmask:
            last = int(addr.rsplit(".", 1)[1])
            return [rc for rc in self.codes if last & int(rc.code)]
        hits = [(ipaddress.ip_network(rc.code), rc) for rc in self.codes]
        hits = [(n, rc) for n, rc in hits if ip in n]
        hits.sort(key=lambda h: -h[0].prefixlen)
        return [rc for _, rc in hits[:1]]

    @property
    def default_weight(self) -> Weight:
        """Weight of an undocumented code on a non-strict list: its mildest blocking weight."""
        blocking = [rc.weight for rc in self.codes if rc.weight in BLOCKING_WEIGHTS]
        return max(blocking, key=lambda w: WEIGHT_RANK[w]) if blocking else "warning"


def _family_of(target: str) -> str:
    try:
        return "ip6" if ipaddress.ip_address(target).version == 6 else "ip4"
    except ValueError:
        return "domain"


class DefunctEntry(_Strict):
    zone: str
    name: str
    since: date | None = None
    note: str = ""
    sources: list[str] = Field(default_factory=list)

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return v.strip().rstrip(".").lower()


class BlocklistSet(_Strict):
    version: int = 1
    mode: Literal["extend", "replace"] = "extend"
    reviewed: date | None = None
    lists: list[BlocklistEntry] = Field(default_factory=list)
    defunct: list[DefunctEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> BlocklistSet:
        seen: set[str] = set()
        for e in self.lists:
            if e.zone in seen:
                raise ValueError(f"duplicate zone {e.zone}")
            seen.add(e.zone)
        return self

    @property
    def defunct_zones(self) -> frozenset[str]:
        return frozenset(d.zone for d in self.defunct)

    def live(self) -> list[BlocklistEntry]:
        """Lists that may be queried: enabled and not recorded as defunct."""
        dead = self.defunct_zones
        return [e for e in self.lists if e.enabled and e.zone not in dead]

    def get(self, zone: str) -> BlocklistEntry | None:
        zone = zone.rstrip(".").lower()
        return next((e for e in self.lists if e.zone == zone), None)


def _read(path: Path) -> BlocklistSet:
    try:
        with path.open(encoding="utf-8") as fh:
            raw: Any = load_yaml(fh)
    except (OSError, YAMLError) as exc:
        raise KnowledgeError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: expected a mapping at top level")
    try:
        data = BlocklistSet.model_validate(raw)
    except ValueError as exc:
        raise KnowledgeError(f"{path}: {exc}") from exc
    # Entries without their own review date inherit the file's.
    if data.reviewed is not None:
        data = data.model_copy(
            update={
                "lists": [
                    e if e.reviewed else e.model_copy(update={"reviewed": data.reviewed}) for e in data.lists
                ]
            }
        )
    return data


@cache
def default_blocklists() -> BlocklistSet:
    """The shipped list of lists (validated, cached)."""
    return _read(BLOCKLISTS_FILE)


@cache
def _override(path: str, mtime: float) -> BlocklistSet:
    # Cached on (path, mtime): merged once per file version, not once per check.
    return merge(default_blocklists(), _read(Path(path)))


def merge(base: BlocklistSet, extra: BlocklistSet) -> BlocklistSet:
    """Combine the defaults with a user file according to the user file's `mode`."""
    defunct = {d.zone: d for d in base.defunct}
    defunct.update({d.zone: d for d in extra.defunct})
    if extra.mode == "replace":
        lists = list(extra.lists)
    else:
        by_zone = {e.zone: e for e in base.lists}
        for e in extra.lists:
            by_zone[e.zone] = e
        lists = list(by_zone.values())
    return BlocklistSet(
        version=base.version,
        mode="extend",
        reviewed=base.reviewed,
        lists=lists,
        defunct=list(defunct.values()),
    )


def load_blocklists(env: Mapping[str, str] | None = None) -> BlocklistSet:
    """The list set for this run: defaults, combined with ``$MAILCHECK_BLOCKLISTS`` if set."""
    env = os.environ if env is None else env
    base = default_blocklists()
    path = env.get(ENV_FILE, "").strip()
    if not path:
        return base
    try:
        mtime = Path(path).stat().st_mtime
    except OSError as exc:
        raise KnowledgeError(f"{ENV_FILE}={path}: {exc}") from exc
    return _override(path, mtime)


# --------------------------------------------------------------- PTR patterns
PTR_PATTERNS_FILE = Path(__file__).resolve().parent / "ptr_patterns.yaml"


class PtrKeyword(_Strict):
    word: str = Field(pattern=r"^[a-z0-9]+$")
    why: str


class PtrRegex(_Strict):
    pattern: str
    why: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


class PtrPatterns(_Strict):
    """Generic / dynamic-looking reverse-DNS names (knowledge/ptr_patterns.yaml)."""

    reviewed: date | None = None
    sources: list[str] = Field(default_factory=list)
    keywords: list[PtrKeyword] = Field(default_factory=list)
    embedded_ip: bool = True
    regexes: list[PtrRegex] = Field(default_factory=list)


@cache
def load_ptr_patterns() -> PtrPatterns:
    try:
        with PTR_PATTERNS_FILE.open(encoding="utf-8") as fh:
            raw: Any = load_yaml(fh)
        return PtrPatterns.model_validate(raw)
    except (OSError, YAMLError, ValueError) as exc:
        raise KnowledgeError(f"{PTR_PATTERNS_FILE.name}: {exc}") from exc
