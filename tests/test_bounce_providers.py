"""Which provider answered: named by a host, a help URL, a code family, prose or the
recipient's domain (tests/fixtures/provider_cases.yaml), and never by the sending side.

Every case is also run redacted the way admins redact before pasting into a shared
channel (IPs as `*.*.*.*` / `x.x.x.x` / `[IP]`, the recipient's local part as `***`):
the provider must not move.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.bounce import analyse_bounce
from knowledge.bounce import load

CASES_FILE = Path(__file__).parent / "fixtures" / "provider_cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


def _text(case: dict[str, Any]) -> str:
    if "text" in case:
        return str(case["text"])
    if "log" in case:
        c = case["log"]
        status = c.get("status", "bounced")
        # relay=none: no server answered, the text is Postfix's own ("connect to ...").
        answered = status != "sent" and c["relay"] != "none"
        said = f"host {c['relay']} said: {c['reply']} (in reply to RCPT TO command)" if answered else c["reply"]
        return (
            "Dec  3 10:00:00 mail postfix/smtp[1234]: 4F1A2B3C4D: "
            f"to=<{c['to']}>, relay={c['relay']}:25, delay=1.2, delays=0.1/0/0.5/0.6, "
            f"dsn={c['dsn']}, status={status} ({said})"
        )
    c = case["dsn"]
    return (
        "From: MAILER-DAEMON@mail.example.net\nTo: sender@example.net\nSubject: Undelivered Mail Returned to Sender\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe message could not be delivered.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.net\n\n"
        f"Final-Recipient: rfc822; {c['to']}\nAction: failed\nStatus: 5.0.0\n"
        f"Remote-MTA: dns; {c['mta']}\nDiagnostic-Code: {c['diag']}\n\n--b--\n"
    )


_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
_LOCAL = re.compile(r"[\w.+-]+@(?=[\w-]+\.)")


def _redacted(text: str, style: int) -> str:
    ip_mask = ("*.*.*.*", "x.x.x.x", "IP")[style % 3]
    out = _IPV4.sub(ip_mask, text)
    return _LOCAL.sub("***@", out)


def _providers(text: str) -> list[str | None]:
    return [b.provider for b in analyse_bounce(text).bounces]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [f"{i:03d}-{c['provider']}" for i, c in enumerate(cases)]


def test_the_case_file_is_big_enough_and_names_every_kind_of_evidence() -> None:
    named = [c for c in CASES if c["provider"]]
    assert len(CASES) >= 120 and len(named) >= 100
    assert len({c["provider"] for c in named}) >= 40
    assert sum(1 for c in CASES if c["provider"] is None) >= 10
    known = set(load().by_id)
    assert {c["provider"] for c in named} <= known


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_provider_named_by_the_text(case: dict[str, Any]) -> None:
    got = _providers(_text(case))
    assert got, "no bounce record"
    assert got[0] == case["provider"], _text(case)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_redacting_ips_and_the_recipient_does_not_move_the_provider(case: dict[str, Any]) -> None:
    plain = _text(case)
    style = CASES.index(case)
    got = _providers(_redacted(plain, style))
    assert got, "no bounce record once redacted"
    assert got[0] == case["provider"], _redacted(plain, style)


def test_at_least_sixty_providers_each_with_a_source_and_a_way_to_be_found() -> None:
    kb = load()
    assert len(kb.providers) >= 60
    for p in kb.providers:
        d = p.spec.detect
        assert p.spec.source.startswith(("http://", "https://")), p.id
        assert d.hosts or d.text or d.codes, p.id
        for rule in p.spec.rules:
            assert rule.source.startswith(("http://", "https://")), (p.id, rule)


def test_spec_provider_ids_exist() -> None:
    spec_ids = {
        "google", "microsoft", "yahoo", "apple", "comcast", "gmx", "orange", "yandex", "mailru",
        "tencent", "zoho", "docomo", "kddi", "softbank", "mimecast", "proofpoint", "barracuda",
    }  # fmt: skip
    assert spec_ids <= set(load().by_id)


def test_provider_detection_scans_a_long_text_once_not_once_per_provider() -> None:
    """Detection cost must not grow with the number of providers: the index holds one
    combined pattern per kind of evidence, whatever the provider count."""
    idx = load().provider_index
    assert idx.hosts is not None and idx.names is not None and idx.codes is not None
    assert len(load().providers) > 3 * 3  # many providers, still three patterns
    long_reply = "550 5.7.1 rejected - gsmtp " + "lorem ipsum dolor sit amet " * 2000
    got = _providers(long_reply)
    assert got == ["google"]


def test_a_reply_copied_with_its_hyphens_spaces_or_apostrophes_changed_keeps_its_provider_rule() -> None:
    # Copies of one reply differ: "header-based" / "header based", "wasn't" / "wasn’t",
    # a line re-wrapped by a mail client. The provider's rule must still decide.
    plain = "550 Rejected by header-based Anti-Spoofing policy: x@example.com - https://community.mimecast.com/docs/DOC-1369#550 [abc.uk11]"
    variants = [
        plain,
        plain.replace("header-based", "header based"),
        plain.replace("Anti-Spoofing policy", "Anti-Spoofing\n    policy").replace("  ", " "),
        plain.replace("by header-based", "by  header-based"),
    ]
    got = {(b.provider, b.reason) for v in variants for b in analyse_bounce(v).bounces}
    assert got == {("mimecast", "policyviolation")}


def _arf(sender: str, agent: str) -> str:
    return (
        f"From: {sender}\nTo: fbl@example.org\nSubject: complaint\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
        f"--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: {agent}\nVersion: 1\n"
        "Source-IP: 192.0.2.8\nOriginal-Rcpt-To: reader@example.net\n\n"
        "--b\nContent-Type: message/rfc822\n\nFrom: news@example.org\nTo: reader@example.net\nSubject: hi\n\nhello\n--b--\n"
    )


@pytest.mark.parametrize(
    ("sender", "agent"),
    [
        ("feedback@arf.mail.yahoo.com", "ARF-Agent/1.0"),  # the provider sent the report itself
        ("complaints@email-abuse.amazonses.com", "Yahoo!-Mail-Feedback/2.0"),  # an ESP relayed it
    ],
)
def test_a_complaint_report_names_the_mailbox_provider_whose_user_complained(sender: str, agent: str) -> None:
    b = analyse_bounce(_arf(sender, agent)).bounces[0]
    assert (b.reason, b.provider) == ("feedback", "yahoo")


def test_a_complaint_report_from_an_unknown_reporter_names_no_provider() -> None:
    b = analyse_bounce(_arf("fbl@reports.example.com", "ARF-Agent/1.0")).bounces[0]
    assert (b.reason, b.provider) == ("feedback", None)


def test_a_complaint_report_forwarded_from_a_mailbox_keeps_the_reporter_of_its_user_agent() -> None:
    b = analyse_bounce(_arf("me@gmail.com", "Yahoo!-Mail-Feedback/2.0")).bounces[0]
    assert b.provider == "yahoo"
    assert analyse_bounce(_arf("me@gmail.com", "ARF-Agent/1.0")).bounces[0].provider is None
