"""Spec-like tests of `mailcheck bounce`'s engine: what a postmaster pastes, what comes back."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from handlers.bounce import analyse_bounce, extract_followup_targets, looks_like_bounce

SAMPLES = Path(__file__).resolve().parent / "bounce_samples"


def one(text: str | bytes, lang: str = "en"):
    report = analyse_bounce(text, lang=lang)
    assert report.kind == "bounce"
    assert len(report.bounces) == 1, report.to_dict()
    return report.bounces[0]


# --- the two cases mailcheck comes from (research/origin.md) ---------------------------------
def test_origin_case_1_hotmail_status_sent_is_delivered_not_inboxed() -> None:
    line = (
        "Jan 10 12:00:00 mail postfix/smtp[2345]: 3F2A1B0C4D: to=<friend@hotmail.com>, "
        "relay=mx1.hotmail.com[52.101.40.29]:25, delay=0.82, delays=0.08/0/0.35/0.39, dsn=2.0.0, "
        "status=sent (250 <20240110120000.3F2A1B0C4D@EXAMPLE.jp> Queued mail for delivery)"
    )
    b = one(line)
    assert b.reason == "delivered"
    assert b.provider == "microsoft"
    assert b.hard is False
    assert b.status == "2.0.0" and b.reply_code == 250
    assert b.remote_host == "mx1.hotmail.com" and b.remote_ip == "52.101.40.29"
    assert "provider.microsoft.consumer_silent_drop" in b.remediation
    assert "provider.microsoft.snds_jmrp" in b.remediation
    # The explanation must not promise the inbox.
    assert "next hop" in b.explanation and "inbox" in b.explanation
    assert b.extra["delays_detail"]["connection_setup"] == 0.35


def test_origin_case_2_gmail_not_authorized_over_ipv6() -> None:
    b = one((SAMPLES / "postfix_gmail_ipv6_ndr.txt").read_text())
    assert b.recipient == "someone@gmail.com"
    assert b.provider == "google"
    assert b.status == "5.7.1" and b.reply_code == 550
    assert b.remote_host == "gmail-smtp-in.l.google.com"
    assert b.to_dict()["remote_ip"] == "2404:6800:4008:c19::1a"
    assert b.to_dict()["sender_ip"] == "2400:8500:1302:3134:157:7:1:2"
    # go-sisimai rhost/for-google.go files NotAuthorizedError under "norelaying".
    assert b.reason == "norelaying"
    # `hard` = the address is dead (Sisimai's hardbounce); this is a permanent failure of
    # the sending IP, not of the address.
    assert b.hard is False
    assert b.permanent is True
    for rid in (
        "provider.google.not_authorized",
        "ptr.set_reverse_dns",
        "blocklist.delist",
        "postfix.ipv4_only_smtp",
    ):
        assert rid in b.remediation
    assert "is not authorized to send email directly to our servers" in b.diagnostic
    assert "550-5.7.1" not in b.diagnostic  # the wrapped multi-line reply is joined
    targets = extract_followup_targets(analyse_bounce((SAMPLES / "postfix_gmail_ipv6_ndr.txt").read_text()))
    assert targets["sender_ips"] == ["2400:8500:1302:3134:157:7:1:2"]


# --- pasted fragments ------------------------------------------------------------------------
def test_gmail_5_7_26_multiline_paste_is_authfailure() -> None:
    b = one((SAMPLES / "gmail_5_7_26.txt").read_text())
    assert b.reason == "authfailure"
    assert b.status == "5.7.26" and b.reply_code == 550
    assert b.provider == "google"
    assert "spf.add_record" in b.remediation and "dkim.publish_key" in b.remediation
    assert b.diagnostic.startswith("550 5.7.26 This mail is unauthenticated")
    assert "550-5.7.26" not in b.diagnostic


def test_bare_reply_without_enhanced_code() -> None:
    b = one(
        "550 Client host [192.0.2.77] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.77"
    )
    assert b.reply_code == 550 and b.status is None
    assert b.reason == "blocked"
    assert b.sender_ip == "192.0.2.77"
    assert "blocklist.delist" in b.remediation


def test_slack_mangled_paste() -> None:
    text = (
        "&lt;<mailto:user@example.com|user@example.com>&gt;: host mx.example.com[192.0.2.5] said: "
        "550 5.1.1 &lt;<mailto:user@example.com|user@example.com>&gt;: Recipient address rejected: "
        "User unknown in virtual mailbox table (in reply to RCPT TO command) "
        "see <https://example.com/help|https://example.com/help>"
    )
    assert looks_like_bounce(text)
    b = one(text)
    assert b.recipient == "user@example.com"
    assert b.reason == "userunknown"
    assert b.status == "5.1.1"
    assert "&lt;" not in b.diagnostic and "mailto:" not in b.diagnostic


# --- MTA log lines ---------------------------------------------------------------------------
def test_postfix_bounced_deferred_expired_lines() -> None:
    report = analyse_bounce((SAMPLES / "postfix_log_lines.txt").read_text())
    assert [b.to_dict()["reason"] for b in report.bounces] == ["userunknown", "expired", "expired"]
    bounced, deferred, expired = report.bounces
    assert (
        bounced.recipient == "alice@example.net" and bounced.status == "5.1.1" and bounced.reply_code == 550
    )
    assert bounced.remote_host == "mx.example.net" and bounced.extra["smtp_command"] == "RCPT"
    assert deferred.action == "delayed" and deferred.status == "4.4.1" and deferred.hard is False
    assert "Connection timed out" in deferred.diagnostic
    assert expired.recipient is None and expired.sender == "sender@example.jp"


def test_exim_main_log_lines() -> None:
    text = (
        "2024-05-01 10:00:00 1sAbCd-000123-Xy ** bob@example.org R=dnslookup T=remote_smtp "
        "H=mx.example.org [203.0.113.5]: SMTP error from remote mail server after RCPT TO:<bob@example.org>: "
        "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown\n"
        "2024-05-01 10:00:01 1sAbCe-000124-Zz == carol@example.net R=dnslookup T=remote_smtp defer (-44) "
        "H=mx.example.net [203.0.113.6]: SMTP error from remote mail server after RCPT TO:<carol@example.net>: "
        "452 4.2.2 Mailbox full\n"
        "2024-05-01 10:00:02 1sAbCf-000125-Qq => dave@example.com R=dnslookup T=remote_smtp "
        'H=mx.example.com [203.0.113.7] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C="250 2.0.0 OK id=1x"\n'
    )
    report = analyse_bounce(text)
    assert [b.reason for b in report.bounces] == ["userunknown", "mailboxfull", "delivered"]
    assert report.bounces[0].remote_ip == "203.0.113.5"
    assert report.bounces[1].action == "delayed"


def test_sendmail_stat_lines() -> None:
    text = (
        "May  1 10:00:00 mx sendmail[4242]: 44AA0000123456: to=<erin@example.org>, delay=00:00:02, "
        "xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.org. [198.51.100.20], dsn=5.1.1, "
        "stat=User unknown\n"
        "May  1 10:00:05 mx sendmail[4243]: 44AA0000123457: to=<frank@example.org>, delay=00:00:01, "
        "xdelay=00:00:01, mailer=esmtp, pri=120000, relay=mx.example.org. [198.51.100.20], dsn=2.0.0, "
        "stat=Sent (Ok: queued as 12345)\n"
    )
    report = analyse_bounce(text)
    assert [b.reason for b in report.bounces] == ["userunknown", "delivered"]
    assert report.bounces[0].remote_host == "mx.example.org"


# --- charsets, junk, never raising -----------------------------------------------------------
def test_iso_2022_jp_notice() -> None:
    b = one((SAMPLES / "iso2022jp_notice.eml").read_bytes(), lang="ja")
    assert b.recipient == "taro@example.co.jp"
    assert b.reason == "userunknown"
    assert "ユーザー不明" in b.explanation


def test_shift_jis_notice() -> None:
    b = one((SAMPLES / "shiftjis_notice.eml").read_bytes())
    assert b.recipient == "hanako@example.ne.jp"
    assert b.reason == "mailboxfull" and b.status == "5.2.2"


def test_five_megabytes_of_junk_is_fast_and_not_a_bounce() -> None:
    junk = random.Random(4).randbytes(6 * 1024 * 1024)
    started = time.monotonic()
    report = analyse_bounce(junk)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert report.bounces == []
    assert any("5 MB" in n for n in report.notes)  # the size cap is said out loud
    # Junk full of reply-like fragments may yield a record, but must stay fast.
    started = time.monotonic()
    analyse_bounce((b"lorem 550-5.7.1 dolor <<<>>> \x00\xff " * 200_000)[: 5 * 1024 * 1024])
    assert time.monotonic() - started < 10
    text_junk = "a@b " * 1_500_000 + "(((((((((((" * 10_000
    started = time.monotonic()
    analyse_bounce(text_junk)
    assert time.monotonic() - started < 10


def test_not_a_bounce() -> None:
    report = analyse_bounce("Hi team, lunch at noon? Thanks!")
    assert report.bounces == []
    assert any(f.code == "bounce.not_a_bounce" for f in report.findings)
    assert not looks_like_bounce("Hi team, lunch at noon? Thanks!")


def test_detector_recognises_common_pastes() -> None:
    assert looks_like_bounce("550-5.7.1 blocked\n550 5.7.1 really blocked")
    assert looks_like_bounce("postfix/smtp[1]: ABCDE12345: to=<a@b.example>, relay=x, status=deferred (x)")
    assert looks_like_bounce("Final-Recipient: rfc822; a@b.example\nStatus: 5.1.1")
    assert looks_like_bounce("2024-05-01 10:00:00 1sAbCd-000123-Xy ** bob@example.org R=x")


def test_knowledge_files_validate_and_every_provider_row_has_a_source() -> None:
    from knowledge.bounce import BounceKnowledge

    kb = BounceKnowledge()  # fresh read: raises on any schema error
    assert {"google", "microsoft", "yahoo", "orange", "tencent", "cox"} <= set(kb.by_id)
    for p in kb.providers:
        for rule in p.spec.rules:
            assert rule.source.startswith("http"), (p.id, rule)


# --- numbers that only look like codes, and the queue's own verdict --------------------------
NOTES_NOTICE = """From: Postmaster@smtp-gw6.example.com
To: shironeko@example.com
Subject: Undeliverable Message
Content-Type: text/plain

Your message

  Subject: Nyaaaan

was not delivered to:

  kijitora@example.com

because:

  User kijitora (kijitora@example.com) not listed in Domino Directory

------- Returned Message --------
Received: from mx450.example.co.jp ([192.0.2.231]) by smtp-gw6.example.com
 (Lotus SMTP MTA v4.6.1 (569.2 2-6-1999)) with SMTP id 00000000.00000000
From: shironeko@example.com
"""


def test_a_version_number_is_not_read_as_an_enhanced_status_code() -> None:
    """'Lotus SMTP MTA v4.6.1' names the software, not a 4.6.1 content error."""
    b = one(NOTES_NOTICE)
    assert b.recipient == "kijitora@example.com"
    assert b.status != "4.6.1" and b.reason != "contenterror", b.to_dict()


def test_a_byte_count_is_not_read_as_a_reply_code_and_the_verdict_above_the_details_is_used() -> None:
    """Verizon's SMS gateway puts the reply above a 'Message details' block that ends in
    'Size (in bytes): 222' (no 222 reply exists); the recipient is in 'RCPT TO:'."""
    text = (
        "From: post_master@vtext.com\nTo: nyaaan@neko.example.org\nSubject: Re:Nyaan\n\n"
        "Error: Invalid user address\nError message below:\n"
        "550 - Requested action not taken: no such user here\n"
        "Message details:\n  Subject: Test message\n  MAIL FROM: nyaaan@neko.example.org\n"
        "  RCPT TO: 2125551234@vtext.com\n  Size (in bytes): 222\n  Number of lines: 2\n"
    )
    b = one(text)
    assert b.recipient == "2125551234@vtext.com"
    assert b.reply_code == 550
    assert b.provider == "verizon" and b.reason == "userunknown" and b.hard is True


def test_a_queue_that_gave_up_is_expired_whatever_its_last_attempt_said() -> None:
    """Sendmail after 5 days: status 4.4.7, 'Connection refused' was only the last try."""
    text = (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@neko.example.jp>\nTo: kijitora@neko.example.jp\n"
        "Subject: Returned mail: see transcript for details\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n<nyaan@example.org>\n"
        "   ----- Transcript of session follows -----\n"
        "<nyaan@example.org>... Deferred: Connection refused by mx.example.org.\n"
        "Message could not be delivered for 5 days\nMessage will be deleted from queue\n\n"
        "Reporting-MTA: dns; neko.example.jp\n\nFinal-Recipient: RFC822; nyaan@example.org\n"
        "Action: failed\nStatus: 4.4.7\n"
    )
    b = one(text)
    assert b.reason == "expired", b.to_dict()


def test_a_notice_whose_text_names_nothing_takes_sendmails_subject_verdict() -> None:
    text = (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@example.co.jp>\nTo: shironeko@example.co.jp\n"
        "Subject: Returned mail: User unknown\n\n"
        "The original message was received at Thu Oct 13 15:22:22 2015\n\n"
        "   ----- The following addresses had permanent delivery errors -----\n"
        "<kijitora@example.org>\n"
    )
    b = one(text)
    assert b.recipient == "kijitora@example.org" and b.reason == "userunknown" and b.hard is True


def test_a_bilingual_notice_listing_recipients_twice_keeps_each_recipients_own_reply() -> None:
    """Mail.ru writes the failures in Russian, then Exim's English text repeats them."""
    section = (
        "  mikeneko@example.jp\n    SMTP error from remote mail server after RCPT TO:<mikeneko@example.jp>:\n"
        "    host mx.example.jp [192.0.2.12]: 550 5.2.2 <mikeneko@example.jp>... Mailbox Full\n"
        "  sabineko@example.jp\n    SMTP error from remote mail server after RCPT TO:<sabineko@example.jp>:\n"
        "    host mx.example.jp [192.0.2.12]: 550 5.1.1 <sabineko@example.jp>... User Unknown\n"
    )
    text = (
        "From: Mail Delivery System <mailer-daemon@corp.mail.ru>\nTo: shironeko@mail.example.ru\n"
        "Subject: Mail delivery failed: returning message to sender\n\n"
        "К сожалению, Ваше письмо не может быть доставлено одному или нескольким получателям:\n\n"
        + section + "\n**********************\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n" + section
    )
    report = analyse_bounce(text)
    got = {b.recipient: (b.reason, b.status) for b in report.bounces}
    assert got == {"mikeneko@example.jp": ("mailboxfull", "5.2.2"), "sabineko@example.jp": ("userunknown", "5.1.1")}


def test_a_size_in_the_intro_is_not_a_reply_code_for_every_recipient() -> None:
    text = (
        "From: MAILER-DAEMON@mx.example.net\nTo: shironeko@example.jp\nSubject: Undelivered Mail\n\n"
        "Your message (size 450 KB) could not be delivered to some recipients.\n\n"
        "a@example.org: mailbox is full\n"
        "b@example.org: user unknown\n"
    )
    report = analyse_bounce(text)
    assert [b.reply_code for b in report.bounces] == [None, None], [b.to_dict() for b in report.bounces]


def test_a_permanent_queue_expiry_5_4_7_is_expired_too() -> None:
    text = (
        "Reporting-MTA: dns; neko.example.jp\n\nFinal-Recipient: RFC822; nyaan@example.org\n"
        "Action: failed\nStatus: 5.4.7\n"
        "Diagnostic-Code: X-Sendmail; Message could not be delivered for 5 days: Connection refused\n"
    )
    assert one(text).reason == "expired"


def test_an_enhanced_status_right_after_japanese_text_is_read() -> None:
    from handlers.bounce.smtp import find_status

    assert find_status("宛先不明5.1.1") == "5.1.1"
    assert find_status("Lotus SMTP MTA v4.6.1") is None


def test_a_huge_paste_of_mbox_separators_is_answered_well_within_the_limit() -> None:
    """4.8 MB of 'From ' lines took about 13 s on a busy machine (every line was
    cleaned of boilerplate, and blocks were cut in lines x addresses)."""
    from tests.support.timing import cpu_timed

    data = ("From a@b Mon Jan 1\nx\n" * 250_000).encode()[:4_800_000]
    report, took = cpu_timed(lambda: analyse_bounce(data))
    assert report.kind == "bounce"
    assert took < 10, took  # SPEC: an analysis answers within 10 s
    many = "".join(f"<user{i}@example.org>: host mx.example.org said: 550 5.1.1 no such user\n" for i in range(3000))
    report, took = cpu_timed(lambda: analyse_bounce(many))
    assert took < 10, took
    assert report.bounces and all(b.reason == "userunknown" for b in report.bounces)


def test_a_japanese_mailing_list_refusing_a_non_member_is_a_rejected_sender() -> None:
    """fml (common on Japanese servers) answers a non-member's post with its own notice."""
    text = (
        "From: staff-admin@example.org\nTo: sironeko@neko.example.org\n"
        "Subject: You sironeko@neko.example.org are not member (staff ML)\n\n"
        "You are not a member of this mailing list <staff@example.org>.\n\n"
        "If you know the general guide of this list, please send mail with\nthe mail body\n\n\tguide\n\n"
        "to the address\n\n\tstaff-ctl@example.org\n\nwhere guide is equal to GUIDE for case insensitive.\n"
    )
    b = one(text)
    assert (b.recipient, b.reason, b.hard) == ("staff@example.org", "rejected", False)


FORWARDED_DSN = (
    "From: MAILER-DAEMON@mx.example.org\r\nTo: shop@sender.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
    "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
    "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
    "Original-Recipient: rfc822;alice@example.org\r\nFinal-Recipient: rfc822;alice.fwd@gmail.com\r\n"
    "Action: failed\r\nStatus: 5.2.2\r\n"
    "Diagnostic-Code: smtp; 552 5.2.2 The recipient's inbox is out of storage space and inactive.\r\n\r\n--B--\r\n"
)


def test_a_forwarded_recipient_is_the_senders_address_and_the_refusing_mailbox_names_the_provider() -> None:
    [b] = analyse_bounce(FORWARDED_DSN).bounces
    assert b.recipient == "alice@example.org"  # RFC 3464 Original-Recipient: what the sender's list holds
    assert b.extra["final_recipient"] == "alice.fwd@gmail.com"
    assert (b.reason, b.provider, b.permanent) == ("mailboxfull", "google", True)


def test_a_bounce_analysed_in_english_and_shown_in_japanese_keeps_the_cases_own_notes() -> None:
    from handlers.i18n import localized_copy

    text = ("<***@gmail.com>: host gmail-smtp-in.l.google.com[2404:6800:4008:c19::1b] said: 550-5.7.1\n"
            "    [2001:db8::25] The IP you're using to send mail is not authorized to send email directly to\n"
            "    our servers. https://support.google.com/mail/?p=NotAuthorizedError - gsmtp (in reply to end of DATA command)\n")
    direct = analyse_bounce(text, lang="ja").bounces[0].explanation
    shown = localized_copy(analyse_bounce(text, lang="en"), "ja").bounces[0].explanation
    assert shown == direct and "IPv6" in shown


# Permanent or temporary: a notice mailed back to the sender is sent when its MTA gives
# up, so it is final unless it says it is only a warning; a queue that gave up is final
# whatever its last reply's class; a bare reply is judged by its class.
_NOTICE = (
    "From: Mail Delivery System <mailer-daemon@mx.example.net>\nTo: <news@example.org>\n"
    "Subject: {subject}\nDate: Thu, 19 Feb 2009 16:12:07 -0800\n\n{body}\n"
)


def test_a_returned_mail_notice_without_any_code_is_permanent() -> None:
    body = "Unable to deliver message to the following address(es).\n\n<userx@example.net>:\nUser's mailbox is full.\n"
    b = analyse_bounce(_NOTICE.format(subject="Undeliverable mail", body=body)).bounces[0]
    assert (b.recipient, b.permanent) == ("userx@example.net", True)


def test_a_delay_warning_without_any_code_is_temporary() -> None:
    body = (
        "This is an advisory-only email. Please do not reply to it.\n\nDelivery of email to this address\n"
        '"calvin@example.net"\nhas been postponed due to a full mailbox.\n\n'
        "We will continue to try to deliver your message over the next few days.\n"
    )
    b = analyse_bounce(_NOTICE.format(subject="Mail Delivery Warning", body=body)).bounces[0]
    assert b.permanent is False


def test_a_queue_that_gave_up_after_a_4xx_reply_is_permanent() -> None:
    body = (
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<user@example.com>:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
        "I'm not going to try again; this message has been in the queue too long.\n"
    )
    b = analyse_bounce(_NOTICE.format(subject="failure notice", body=body)).bounces[0]
    assert (b.status, b.permanent) == ("4.4.1", True)


def test_a_bare_4xx_reply_is_temporary_and_a_5xx_permanent() -> None:
    assert analyse_bounce("421 4.7.0 Try again later, closing connection.").bounces[0].permanent is False
    assert analyse_bounce("550 5.1.1 <a@example.com>: Recipient address rejected").bounces[0].permanent is True


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("L'adresse de messagerie référencée ci-dessus n'existe pas. Veuillez en vérifier l'orthographe.", "userunknown"),
        ("Benutzer unbekannt.", "userunknown"),
        ("ユーザー不明のため配送できませんでした。", "userunknown"),
        ("Das Postfach ist voll.", "mailboxfull"),
        ("メールボックスの容量超過のため配送できませんでした。", "mailboxfull"),
        ("宛先のドメインが存在しません。", "hostunknown"),
    ],
)
def test_a_notice_in_another_language_names_its_reason(words: str, reason: str) -> None:
    body = f"A message could not be delivered to:\nuserx@example.fr\n\n{words}\n"
    bounces = analyse_bounce(_NOTICE.format(subject="Undeliverable mail", body=body)).bounces
    assert [(b.recipient, b.reason, b.permanent) for b in bounces] == [("userx@example.fr", reason, True)]


def test_a_dsn_whose_human_part_only_repeats_the_address_gets_the_notice_words_as_diagnostic() -> None:
    raw = (
        "From: postmaster@mail.example.net\nTo: <news@example.org>\nSubject: Delivery Status Notification (Delay)\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThis is an automatically generated Delivery Status Notification.\n\n"
        "THIS IS A WARNING MESSAGE ONLY.\n\nDelivery to the following recipients has been delayed.\n\n"
        "       kijitora@example.com\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns;mail.example.net\n\n"
        "Final-Recipient: rfc822;kijitora@example.com\nAction: delayed\nStatus: 4.4.7\n\n--b--\n"
    )
    b = analyse_bounce(raw).bounces[0]
    assert "kijitora@example.com" not in b.diagnostic
    assert "has been delayed" in b.diagnostic and b.permanent is False


@pytest.mark.parametrize(
    "notice_words",
    [
        "SMTP Server <smtpd.example.net> rejected recipient <u@example.net> (Error following RCPT command). It responded as follows: [550 5.1.1 User unknown] Please verify recipient(s) mail addresses.",
        "Your message: Subject: hello Could not be delivered because of 550 5.1.1 User unknown",
        "5.1.0 - Unknown address error 550 '5.1.1 User unknown' (delivery attempts: 0)",
        "550 5.1.1 User unknown Received:from mail.example.org by mx.example.net with SMTP id 1418381459307",
    ],
)
def test_the_diagnostic_is_the_remote_reply_however_the_notice_wraps_it(notice_words: str) -> None:
    body = f"A message could not be delivered to:\nu@example.net\n\n{notice_words}\n"
    b = analyse_bounce(_NOTICE.format(subject="Undeliverable mail", body=body)).bounces[0]
    assert (b.diagnostic, b.reason, b.reply_code) == ("550 5.1.1 User unknown", "userunknown", 550)


@pytest.mark.parametrize(
    "body",
    [
        # Postfix's own delay warning names the time spent so far: still not final.
        "This is the mail system at host mx.example.net.\n\n####################################################\n"
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
        "####################################################\n\nYour message could not be delivered for more than 4 hour(s).\n"
        "It will be retried until it is 5 day(s) old.\n\n<u@example.com>: host mx.example.com[192.0.2.1] said: 452 4.2.2 Mailbox full, try later\n",
        "Delivery to the following recipient has been delayed.\n\n<u@example.com>: 452 4.2.2 Mailbox full\n",
        "以下の宛先への配送が遅れています。引き続き再送を試みます。\n\n<u@example.com>: 452 4.2.2 Mailbox full\n",
    ],
)
def test_a_delay_warning_is_temporary_even_when_it_names_the_hours_spent(body: str) -> None:
    bounces = analyse_bounce(_NOTICE.format(subject="Delayed Mail (still being retried)", body=body)).bounces
    assert bounces and all(b.permanent is False for b in bounces)


def test_a_4xx_status_alone_in_a_dsn_fragment_is_temporary() -> None:
    frag = "Final-Recipient: rfc822; u@example.com\nStatus: 4.2.2\nDiagnostic-Code: smtp; 452 4.2.2 Mailbox full, try later\n"
    assert [b.permanent for b in analyse_bounce(frag).bounces] == [False]
    assert analyse_bounce("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred").bounces[0].permanent is False


@pytest.mark.parametrize(
    ("words", "diagnostic"),
    [
        ("It responded as follows: [550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent.] Please verify",
         "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent."),
        ("5.1.0 - Unknown address error 550 '5.1.1 The recipient's address was not found' (delivery attempts: 0)",
         "550 5.1.1 The recipient's address was not found"),
        ("550 5.1.1 <u@example.net>: unknown; original reply 550 '5.1.1 nope'",
         "550 5.1.1 <u@example.net>: unknown; original reply 550 '5.1.1 nope'"),
    ],
)
def test_brackets_and_apostrophes_inside_a_reply_do_not_cut_it_short(words: str, diagnostic: str) -> None:
    body = f"A message could not be delivered to:\nu@example.net\n\n{words}\n"
    b = analyse_bounce(_NOTICE.format(subject="Undeliverable mail", body=body)).bounces[0]
    assert b.diagnostic == diagnostic
