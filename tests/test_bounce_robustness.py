"""The analyser never raises and never hangs, whatever it is given (SPEC safety rules)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.bounce import analyse_bounce, extract_followup_targets, looks_like_bounce

_fragments = st.sampled_from(
    [
        "550-5.7.1 ",
        "550 5.1.1 ",
        "<a@b.example>: ",
        "host mx.example[192.0.2.1] said: ",
        "\n",
        "Final-Recipient: rfc822; x@y.example\n",
        "Status: 5.",
        "Diagnostic-Code: smtp; ",
        "&lt;",
        "&gt;",
        "<mailto:a@b.example|a@b.example>",
        "status=sent (",
        "to=<",
        "relay=",
        "** ",
        "stat=",
        "Content-Type: multipart/report; boundary=x\n\n--x\n",
        "\x1b$B",
        "From: MAILER-DAEMON\n",
        "[",
        "(",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000))
def test_never_raises_on_text(text: str) -> None:
    report = analyse_bounce(text)
    assert report.kind == "bounce"
    extract_followup_targets(report)
    looks_like_bounce(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_bytes(data: bytes) -> None:
    assert analyse_bounce(data).kind == "bounce"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_fragments, st.text(max_size=40)), max_size=60))
def test_never_raises_on_bounce_like_soup(parts: list[str]) -> None:
    text = "".join(parts)
    report = analyse_bounce(text)
    for b in report.bounces:
        assert b.reason
        d = b.to_dict()
        assert isinstance(d["reply_code"], int | None)
