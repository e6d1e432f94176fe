"""The two field cases behind mailcheck (research/origin.md) get their authors' advice and better."""

from __future__ import annotations

import re

import knowledge

# Case 2's Gmail reply as Postfix prints it, continuation prefixes and all.
GMAIL_IPV6_BOUNCE = """\
<someone@gmail.com>: host gmail-smtp-in.l.google.com[2404:6800:4008:c19::1b] said: 550-5.7.1
    [2400:8500:1302:3134:157:7:1:2] The IP you're using to send mail
    550-5.7.1 is not authorized to send email directly to our servers. Please
    use 550-5.7.1 the SMTP relay at your service provider instead. Learn more
    at 550 5.7.1  https://support.google.com/mail/?p=NotAuthorizedError
    x1si123 - gsmtp (in reply to end of DATA command)
"""


def _unfold(text: str) -> str:
    text = re.sub(r"\b[245]\d\d[- ][245]\.\d{1,3}\.\d{1,3}\b", " ", text)
    return re.sub(r"\s+", " ", text).lower()


def _full(entry_id: str, lang: str) -> str:
    r = knowledge.remediation(entry_id).localized(lang)
    code = [line for block in r.code for line in block.lines]  # commands shown after their step
    return "\n".join([r.title, r.why, *r.steps, *code, r.verify])


def _contains_all(text: str, needles: list[str]) -> list[str]:
    low = text.lower()
    return [n for n in needles if n.lower() not in low]


# ------------------------------------------------------------------ case 1: Hotmail


def test_case1_silent_drop_english() -> None:
    text = _full("provider.microsoft.consumer_silent_drop", "en")
    missing = _contains_all(
        text,
        [
            "status=sent",
            "Queued mail for delivery",
            "Junk",
            "SNDS",
            "JMRP",
            "go.microsoft.com/fwlink/?LinkID=614866",  # sender support form
            "SPF",
            "DKIM",
            "DMARC",
            "reverse DNS",
            "open relay",
            "no allowlist",
            "no promise",
            "Validity",
            "relay through another",
            "don't rely on Hotmail",
        ],
    )
    assert not missing


def test_case1_silent_drop_japanese() -> None:
    text = _full("provider.microsoft.consumer_silent_drop", "ja")
    missing = _contains_all(
        text,
        [
            "status=sent",
            "迷惑メールフォルダ",
            "SNDS",
            "JMRP",
            "送信者サポート",
            "SPF",
            "DKIM",
            "逆引き",
            "オープンリレー",
            "許可リスト",
            "約束",
            "保証",
        ],
    )
    assert not missing


def test_case1_is_reached_from_a_delivered_log_line() -> None:
    info = knowledge.reason_info("delivered")
    assert info is not None and info.hard == "no"
    assert "provider.microsoft.consumer_silent_drop" in info.remediation
    ms = knowledge.provider("microsoft")
    assert ms is not None
    assert "provider.microsoft.consumer_silent_drop" in ms.remediation
    assert any("hotmail.com" == d for d in ms.domains) and "hotmail.com" in ms.mx
    snds = knowledge.remediation("provider.microsoft.snds_jmrp").localized("en")
    assert "72 hours" in "\n".join(snds.steps)


def test_case1_does_not_claim_silent_drops_as_fact() -> None:
    """Silent discards are unverified: the advice says admins report it, not that Microsoft does it."""
    why = knowledge.remediation("provider.microsoft.consumer_silent_drop").why.en
    assert "report" in why.lower()
    assert "only says" in why.lower()


# ------------------------------------------------------------------ case 2: Gmail over IPv6


def test_case2_bounce_text_matches_provider_code() -> None:
    google = knowledge.provider("google")
    assert google is not None
    text = _unfold(GMAIL_IPV6_BOUNCE)
    assert any(m in text for m in google.markers)
    hits = [c for c in google.codes if c.match and c.match in text]
    assert hits, "no Google code matches the case-2 bounce"
    code = hits[0]
    assert code.code == "NotAuthorizedError"
    assert code.hard and code.reason == "blocked"
    assert code.remediation[0] == "provider.google.not_authorized"
    assert "postfix.ipv4_only_smtp" in code.remediation


def test_case2_not_authorized_english() -> None:
    text = _full("provider.google.not_authorized", "en")
    missing = _contains_all(
        text,
        [
            "IPv6",
            "Spamhaus",
            "check.spamhaus.org",
            "only the provider",
            "reverse DNS",
            "dig +short -x",
            "Postmaster Tools",
            "TXT",
            "relay",
            "smarthost",
            "relayhost",
            "-o inet_protocols=ipv4",
            "master.cf",
            "smtp_address_preference = ipv4 does not fix",
            "inet_protocols = ipv4",
            "disables inbound IPv6",
            "postfix stop/start",
            "cost",
            "allowlist",
        ],
    )
    assert not missing


def test_case2_not_authorized_japanese() -> None:
    text = _full("provider.google.not_authorized", "ja")
    missing = _contains_all(
        text,
        [
            "IPv6",
            "Spamhaus",
            "check.spamhaus.org",
            "解除申請",
            "逆引き",
            "Postmaster Tools",
            "TXTレコード",
            "SMTPリレー",
            "スマートホスト",
            "master.cf",
            "-o inet_protocols=ipv4",
            "smtp_address_preference = ipv4 では解決しません",
            "inet_protocols = ipv4",
            "受信のIPv6も止まり",
            "代償",
            "許可リスト",
        ],
    )
    assert not missing


def test_postfix_ipv4_only_knows_which_setting_fixes_what() -> None:
    en = _full("postfix.ipv4_only_smtp", "en")
    for needle in [
        "smtp_address_preference = ipv4 is NOT a solution",
        "-o inet_protocols=ipv4",
        "master.cf",
        "inet_protocols = all",
        "postfix stop && postfix start",
        "a reload is not enough",
        "inbound mail (smtpd)",
        "workaround, not a fix",
    ]:
        assert needle in en, needle
    ja = _full("postfix.ipv4_only_smtp", "ja")
    for needle in [
        "smtp_address_preference = ipv4",
        "-o inet_protocols=ipv4",
        "postfix stop && postfix start",
        "回避策",
    ]:
        assert needle in ja, needle


def test_case2_spam_folder_signals() -> None:
    """Case 2's spam-folder causes: short body, meaningless subject, full-width spaces, links, DMARC."""
    body = _full("message.body_content", "en")
    assert "few" in body and "mail-tester.com" in body
    subj = _full("message.subject_content", "en")
    assert "ttt" in subj
    att_en, att_ja = _full("message.attachment_names", "en"), _full("message.attachment_names", "ja")
    assert "full-width space" in att_en and "全角スペース" in att_ja
    url = _full("message.url_reputation", "en")
    assert "DBL" in url and "SURBL" in url
    for code, entry in [
        ("message.short_body", "message.body_content"),
        ("message.subject_suspicious", "message.subject_content"),
        ("message.attachment_name", "message.attachment_names"),
        ("message.url_listed", "message.url_reputation"),
    ]:
        text = knowledge.finding_text(code, "ja")
        assert text is not None and entry in text.remediation


def test_requireptr_and_ptr_findings_point_to_ipv6_workaround() -> None:
    info = knowledge.reason_info("requireptr")
    assert info is not None and "postfix.ipv4_only_smtp" in info.remediation
    ptr = _full("ptr.set_reverse_dns", "en")
    assert "IPv6 needs its own PTR" in ptr


def test_japanese_wording_is_admin_wording() -> None:
    """Spot-check the vocabulary Japanese admins actually use."""
    joined = "\n".join(
        _full(i, "ja")
        for i in (
            "ptr.set_reverse_dns",
            "blocklist.delist",
            "spf.add_record",
            "bounce.delivered",
            "provider.jp_carrier.filters",
        )
    )
    for word in [
        "逆引き",
        "SPFレコード",
        "送信ドメイン認証",
        "迷惑メールフォルダ",
        "ブラックリスト",
        "解除申請",
        "ドメイン指定受信",
        "キャリアメール",
    ]:
        assert word in joined or word in _full("bounce.authfailure", "ja"), word
