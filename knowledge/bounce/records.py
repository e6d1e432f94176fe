"""One record per bounce reason: ``knowledge/bounce/reasons/<reason>.yaml``.

Shaped like Sisimai's reason units (go-sisimai ``reason/why-*.go``): everything the
analyser, the follow-up checks and the renderers know about one reason of the
vocabulary (SPEC.md, "Bounce reason") lives in that reason's file:

- ``summary`` / ``explain`` (en, ja): the one-line summary (docs/findings.md) and the
  longer plain-language explanation shown when no analysis text is at hand;
- ``meaning`` (en, ja): the sentence every analysed bounce of this reason starts with;
- ``hard``: is the *address* dead, so the sender must stop mailing it — ``"yes"``,
  ``"no"``, or ``if_permanent`` (only when the reply was permanent, 5xx: a null MX,
  RFC 7505). Sisimai's definition (go-sisimai ``smtp/failure/lib.go`` IsHardBounce);
- ``failure``: false for notices that are not delivery failures (accepted, auto-reply,
  complaint): no permanence is judged and ``severity`` is fixed;
- ``status_decides``: false when an RFC 3463 status code alone does not settle this
  reason, so the phrase rules get a second look;
- ``remediation``: the reason's reference entries (``bounce.<reason>`` first);
  ``also_shown``: provider-neutral entries every analysed bounce of this reason shows;
- ``likely_causes``: finding codes of the live follow-up checks that explain it, best first;
- ``phrases``: lower-case wording that names this reason (``contains`` any of them,
  ``aligned`` parts in order, never when ``not_contains`` is present).

The order in which phrase rules are tried is ``reason_order.yaml``. Records are read
once, on first use, by :func:`load_reasons` (``knowledge.loader`` and
``knowledge.bounce`` both use it; :func:`read_reasons` is the one reader).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.schema import REASONS, Severity, Text

REASONS_DIR = Path(__file__).resolve().parent / "reasons"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_reason(value: str) -> str:
    if value not in REASONS:
        raise ValueError(f"unknown reason {value!r}")
    return value


class PhraseRule(_Strict):
    contains: list[str] = Field(default_factory=list)
    aligned: list[list[str]] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)

    @field_validator("contains", "not_contains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @field_validator("aligned")
    @classmethod
    def _lower_pairs(cls, value: list[list[str]]) -> list[list[str]]:
        if any(len(p) < 2 for p in value):
            raise ValueError("an aligned rule needs at least two parts")
        return [[v.lower() for v in p] for p in value]

    def matches(self, text: str) -> bool:
        """`text` must already be lower-case."""
        if not text:
            return False
        if any(n in text for n in self.not_contains):
            return False
        if any(c in text for c in self.contains):
            return True
        return any(_aligned(text, parts) for parts in self.aligned)


def _aligned(text: str, parts: list[str]) -> bool:
    # Every part occurs, each after the previous one (plain str.find: linear, no regex).
    pos = 0
    for part in parts:
        idx = text.find(part, pos)
        if idx < 0:
            return False
        pos = idx + len(part)
    return True


class ReasonRecord(_Strict):
    """Everything known about one bounce reason (see the module docstring)."""

    reason: str
    summary: Text
    explain: Text
    meaning: Text
    hard: Literal["yes", "no", "if_permanent"]
    failure: bool = True
    severity: Severity | None = None
    status_decides: bool = True
    remediation: list[str] = Field(min_length=1)
    also_shown: list[str] = Field(default_factory=list)
    likely_causes: list[str] = Field(default_factory=list)
    phrases: PhraseRule | None = None

    _reason = field_validator("reason")(classmethod(lambda cls, v: check_reason(v)))

    @model_validator(mode="after")
    def _consistent(self) -> ReasonRecord:
        if self.remediation[0] != f"bounce.{self.reason}":
            raise ValueError(f"remediation must start with bounce.{self.reason}")
        if (self.severity is None) == (not self.failure):
            raise ValueError("a fixed severity is for notices that are not failures (failure: false), and only them")
        if not self.failure and self.hard != "no":
            raise ValueError("a notice that is not a failure never marks the address dead")
        if len(set(self.likely_causes)) != len(self.likely_causes):
            raise ValueError("likely_causes lists a code twice")
        return self

    def address_dead(self, permanent: bool | None) -> bool:
        """Is the address dead, given whether the reply was permanent (None: not known)?"""
        if self.hard == "if_permanent":
            return permanent is not False
        return self.hard == "yes"


class RecordError(ValueError):
    """A reason file is missing, unreadable or does not validate."""


@cache
def load_reasons() -> dict[str, ReasonRecord]:
    """Every reason's record, by reason, in the vocabulary's order; read once per process."""
    return read_reasons(REASONS_DIR)


def read_reasons(base: Path) -> dict[str, ReasonRecord]:
    """The records in directory `base`: one ``<reason>.yaml`` per reason, each valid."""
    from knowledge.yamlload import YAMLError, load_yaml

    out: dict[str, ReasonRecord] = {}
    found = {p.stem: p for p in base.glob("*.yaml")}
    unknown = sorted(set(found) - set(REASONS))
    missing = [r for r in REASONS if r not in found]
    if unknown or missing:
        raise RecordError(f"reasons/: files must be the vocabulary: unknown {unknown}, missing {missing}")
    for reason in REASONS:
        path = found[reason]
        try:
            with path.open(encoding="utf-8") as fh:
                raw = load_yaml(fh)
            if not isinstance(raw, dict) or "reason" in raw:
                raise RecordError("expected a mapping at top level, named by its file (no `reason` key)")
            out[reason] = ReasonRecord.model_validate({"reason": reason, **raw})
        except (OSError, YAMLError, ValueError) as exc:
            raise RecordError(f"reasons/{path.name}: {exc}") from exc
    return out


__all__ = ["REASONS", "PhraseRule", "ReasonRecord", "RecordError", "check_reason", "load_reasons", "read_reasons"]
