"""A bounce pasted the way admins paste it gives the same answer as the original.

People mask addresses, hosts and IPs before pasting into a shared channel, Slack
escapes what they paste, and mail clients re-wrap it. Whatever was masked, the reason,
status, reply code and provider must stay as for the plain text; a masked recipient is
reported as masked (never replaced by another token), and a masked IP is never looked up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.bounce import analyse_bounce, extract_followup_targets
from knowledge.bounce import load
from tests.support.redact import Redactor, indent, rewrap, slack_escape, styles

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "bounces"
AGREEMENT = 0.99

needs_corpus = pytest.mark.skipif(not (CORPUS / "labels.jsonl").exists(), reason="bounce corpus not present")


def _records(data: bytes) -> list[tuple[str, str | None, str | None, int | None, str]]:
    return [
        (b.reason, b.provider, b.status, b.reply_code, (b.recipient or "").rpartition("@")[2].lower())
        for b in analyse_bounce(data).bounces
    ]


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, bytes, list[tuple[str, str | None, str | None, int | None]]]]:
    labels = [json.loads(x) for x in (CORPUS / "labels.jsonl").read_text().splitlines() if x.strip()]
    out = []
    for lab in labels:
        data = (CORPUS / lab["file"]).read_bytes()
        out.append((lab["file"], data, _records(data)))
    return out


def _agreement(corpus, transform) -> tuple[float, float, list[str]]:
    """Per plain record: does the transformed text give the same reason / provider?

    The provider is compared only where the recipient's domain is still in the text: a
    mask that hides the whole address ("<...>") leaves no trace of a provider that only
    the recipient's domain named. The same holds when that domain still appears elsewhere
    (a Received line, the notice's own From), but the masked record's recipient lost it
    and the plain answer was just the recipient's mailbox provider: the provider engine
    rightly takes neither addresses nor the returned headers as evidence of who refused."""
    mailbox_provider = load().provider_index.domain
    n = n_provider = same_reason = same_provider = 0
    misses: list[str] = []
    for name, data, plain in corpus:
        masked = transform(data)
        low = masked.lower()
        got = _records(masked)
        for i, want in enumerate(plain):
            n += 1
            have = got[i] if i < len(got) else None
            same_reason += have is not None and have[0] == want[0]
            if want[4] and want[4].encode() not in low:
                continue  # the mask hid the recipient's whole domain: no evidence of it is left
            if have is not None and have[4] != want[4] and want[1] is not None:
                named = mailbox_provider(want[4])
                if named is not None and named.id == want[1]:
                    continue  # only the (now masked) recipient's domain named the provider
            n_provider += 1
            same_provider += have is not None and have[1] == want[1]
            if have is None or have[:2] != want[:2]:
                misses.append(f"{name}[{i}] {want[:2]} -> {have[:2] if have else None}")
    return same_reason / n, same_provider / n_provider, misses


@needs_corpus
@pytest.mark.parametrize("style", sorted(styles()))
def test_masked_corpus_keeps_reason_and_provider(corpus, style: str) -> None:
    reason, provider, misses = _agreement(corpus, styles()[style])
    assert reason >= AGREEMENT, (reason, misses[:20])
    assert provider >= AGREEMENT, (provider, misses[:20])


@needs_corpus
def test_slack_escaped_corpus_keeps_reason_and_provider(corpus) -> None:
    reason, provider, misses = _agreement(corpus, slack_escape)
    assert reason >= AGREEMENT and provider >= AGREEMENT, (reason, provider, misses[:20])


# --- single pastes ---------------------------------------------------------------------------
POSTFIX_NDR = b"""This is the mail system at host mail.example.jp.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<tanaka@example.org>: host mx2.example.org[198.51.100.25] said: 550 5.1.1
    <tanaka@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)
"""


@pytest.mark.parametrize("seed", range(8))
def test_a_masked_postfix_notice_keeps_its_verdict(seed: int) -> None:
    for style in styles(seed).values():
        (b,) = analyse_bounce(style(POSTFIX_NDR)).bounces
        assert (b.reason, b.status, b.reply_code) == ("userunknown", "5.1.1", 550)
        assert b.diagnostic.startswith("550 5.1.1")


@pytest.mark.parametrize(
    "masked",
    ["<***@example.org>", "<xxx@example.org>", "<×××@example.org>", "<...@EXAMPLE.jp>", "<...>", "(redacted)"],
)
def test_a_masked_recipient_is_reported_as_masked(masked: str) -> None:
    text = POSTFIX_NDR.replace(b"<tanaka@example.org>: host", masked.encode() + b": host")
    (b,) = analyse_bounce(text).bounces
    assert b.reason == "userunknown"
    assert b.extra.get("recipient_masked") is True
    assert b.recipient is None or "tanaka" not in b.recipient


@pytest.mark.parametrize("ip", ["*.*.*.*", "x.x.x.x", "IP", "$(_ipsrc)", "198.51.100.***", "2404:6800:4008:c19::***"])
def test_a_masked_relay_ip_is_not_an_address_and_is_never_looked_up(ip: str) -> None:
    line = (
        "Dec  3 10:00:00 mail postfix/smtp[1234]: 4F2A1B0C4D: to=<***@gmail.com>, "
        f"relay=gmail-smtp-in.l.google.com[{ip}]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.7.1, "
        f"status=bounced (host gmail-smtp-in.l.google.com[{ip}] said: 550-5.7.1 [{ip}] The IP you're "
        "using to send mail is not authorized to send email directly to our servers. - gsmtp "
        "(in reply to end of DATA command))"
    )
    report = analyse_bounce(line)
    (b,) = report.bounces
    assert (b.reason, b.provider, b.status, b.reply_code) == ("norelaying", "google", "5.7.1", 550)
    assert b.remote_host == "gmail-smtp-in.l.google.com"
    assert b.remote_ip is None and b.sender_ip is None
    assert extract_followup_targets(report)["sender_ips"] == []


def test_an_emptied_log_recipient_is_not_filled_from_the_reply() -> None:
    line = (
        "postfix/smtp[...]: aaa: to=, relay=mx*.hotmail.com[*.*.*.*]:25, delay=0.82, "
        "delays=0.08/0/0.35/0.39, dsn=2.0.0, status=sent (250 <...@EXAMPLE.jp> Queued mail for delivery)"
    )
    (b,) = analyse_bounce(line).bounces
    assert b.recipient is None and b.extra["recipient_masked"] is True
    assert (b.reason, b.provider, b.remote_host) == ("delivered", "microsoft", "mx*.hotmail.com")


@pytest.mark.parametrize("transform", [rewrap, indent, slack_escape, lambda d: d.replace(b"\n", b"\r\n")])
def test_rewrapped_indented_and_escaped_pastes_keep_their_verdict(transform) -> None:
    (b,) = analyse_bounce(transform(POSTFIX_NDR)).bounces
    assert (b.reason, b.status, b.reply_code, b.recipient) == ("userunknown", "5.1.1", 550, "tanaka@example.org")


def test_the_redactor_masks_consistently_and_leaves_mailer_daemon_alone() -> None:
    text = b"From: MAILER-DAEMON@mail.example.jp\nTo: a@example.jp\n\n<a@example.jp> 192.0.2.1 a@example.jp"
    out = Redactor(1)(text)
    assert b"MAILER-DAEMON@mail.example.jp" in out
    assert b"a@example.jp" not in out and b"192.0.2.1" not in out
    masked = out.split(b"\n")[1][4:]
    assert out.count(masked) == 3  # the same address is masked the same way everywhere


def test_a_masked_sender_domain_is_never_looked_up() -> None:
    from handlers.model import BounceRecord, Report

    report = Report(kind="bounce", subject="x")
    report.bounces = [
        BounceRecord(reason="userunknown", sender="alice@***", extra={"original_sender": "xxx@xxx"}),
        BounceRecord(reason="userunknown", sender="alice@example.jp"),
    ]
    assert extract_followup_targets(report)["sender_domains"] == ["example.jp"]


# --- the diagnostic is the remote server's words -------------------------------------------
@needs_corpus
def test_corpus_diagnostics_start_with_the_remote_reply() -> None:
    """Where a remote server answered, the diagnostic starts with its reply, not with the
    notice's wording ("<rcpt>: host ... said:", "----- Transcript of session follows -----")."""
    import re

    labels = [json.loads(x) for x in (CORPUS / "labels.jsonl").read_text().splitlines() if x.strip()]
    coded = starts = 0
    for lab in labels:
        for b in analyse_bounce((CORPUS / lab["file"]).read_bytes()).bounces:
            if b.reply_code is None:
                continue
            coded += 1
            ok = bool(re.match(r"[245]\d\d", b.diagnostic))
            starts += ok
            if lab["module"] in ("Postfix", "Sendmail", "Exim", "qmail"):
                assert ok, (lab["file"], b.diagnostic[:120])
    assert starts / coded >= 0.97, (starts, coded)  # measured 271/276


def test_a_transcript_after_the_reply_does_not_move_its_start() -> None:
    text = (
        "   ----- The following addresses had permanent fatal errors -----\n<bob@example.org>\n"
        "    (reason: 554 5.7.1 Service unavailable)\n\n   ----- Transcript of session follows -----\n"
        "... while talking to mx.example.org.:\n>>> DATA\n<<< 554-5.7.1 The message was rejected because it contains\n"
        "<<< 554-5.7.1 prohibited virus or spam content\n<<< 554 5.7.1 Service unavailable\n554 5.0.0 Service unavailable\n"
    )
    (b,) = analyse_bounce(text).bounces
    assert b.diagnostic.startswith("554 5.7.1 The message was rejected because it contains prohibited virus")
    assert (b.reason, b.status, b.reply_code) == ("virusdetected", "5.7.1", 554)
