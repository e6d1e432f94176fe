"""Bare replies, log lines and short notices in other MTAs' and providers' wordings.

The fragments (tests/fixtures/bounce_fragments.yaml) are written after public
documentation, not taken from the development corpus: they check that the rules are
general. Each must give its reason, status, reply code and provider, and keep them when
pasted masked, Slack-escaped or re-wrapped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.bounce import analyse_bounce, looks_like_bounce
from tests.support.redact import Redactor, indent, rewrap, slack_escape, styles

FRAGMENTS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).resolve().parent / "fixtures" / "bounce_fragments.yaml").read_text(encoding="utf-8")
)
FIELDS = ("reason", "status", "reply_code", "provider")


def _check(fr: dict[str, Any], data: str | bytes, *, masked: bool = False, domain_hidden: bool = False) -> None:
    report = analyse_bounce(data)
    assert len(report.bounces) == 1, (fr["name"], [b.to_dict() for b in report.bounces])
    b = report.bounces[0]
    fields = [k for k in FIELDS if not (k == "provider" and domain_hidden and fr.get("provider_from_recipient"))]
    got = {k: getattr(b, k) for k in fields}
    assert got == {k: fr[k] for k in fields}, (fr["name"], b.diagnostic)
    if "permanent" in fr:
        assert b.permanent is fr["permanent"], fr["name"]
    if "recipient" in fr and not masked:
        assert b.recipient == fr["recipient"], fr["name"]


def test_there_are_enough_fragments_from_enough_sources() -> None:
    assert len(FRAGMENTS) >= 40
    assert len({f["reason"] for f in FRAGMENTS}) >= 15


@pytest.mark.parametrize("fr", FRAGMENTS, ids=[f["name"] for f in FRAGMENTS])
def test_fragment(fr: dict[str, Any]) -> None:
    _check(fr, fr["text"])
    assert looks_like_bounce(fr["text"]), "a Slack paste of it would not be analysed"


@pytest.mark.parametrize("fr", FRAGMENTS, ids=[f["name"] for f in FRAGMENTS])
def test_fragment_masked_escaped_and_rewrapped(fr: dict[str, Any]) -> None:
    raw = fr["text"].encode("utf-8")
    for seed in range(3):
        _check(fr, Redactor(seed, log_to_empty=seed == 2)(raw), masked=True)
        _check(fr, Redactor(seed, whole_address=0.5, hosts=True)(raw), masked=True, domain_hidden=True)
    _check(fr, slack_escape(raw))
    _check(fr, indent(raw))
    if "\n" in fr["text"].strip():  # a notice: a chat window re-wraps its lines
        _check(fr, rewrap(raw))


# --- whole Postfix 3.x DSNs (bounce(8) templates: failed, delayed, queue give-up) -------------
POSTFIX3 = Path(__file__).resolve().parent / "bounce_samples" / "postfix3"
DSNS = {
    "local_full.eml": ("mailboxfull", "5.2.2", True, "failed"),
    "hostnotfound.eml": ("hostunknown", "5.4.4", True, "failed"),
    # Postfix gave up after the queue lifetime (Action: failed): final, though the last reply was 4xx.
    "expired.eml": ("expired", "4.4.1", True, "failed"),
    "delayed.eml": ("expired", "4.4.1", False, "delayed"),
}


@pytest.mark.parametrize("name", sorted(DSNS))
@pytest.mark.parametrize("style", ["plain", *sorted(styles())])
def test_postfix3_dsn_plain_and_masked(name: str, style: str) -> None:
    data = (POSTFIX3 / name).read_bytes()
    if style != "plain":
        data = styles()[style](data)
    (b,) = analyse_bounce(data).bounces
    assert (b.reason, b.status, b.permanent, b.action) == DSNS[name]
    assert b.reply_code is None  # the MTA's own verdict: no remote server answered
