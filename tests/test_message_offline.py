"""`mailcheck message` parts that need no DNS: detection, parsing, hostile input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from handlers.message import diagnose_message, looks_like_message
from handlers.message.authresults import parse_authres
from handlers.message.charset import decode_header_value, rfc2231_value
from handlers.message.received import analyse_path, is_internal

MESSAGES = Path(__file__).resolve().parent / "fixtures" / "messages"

HEADERS = (
    "Received: from mail.msg.example (mail.msg.example [192.0.2.10]) by mx.google.com with ESMTPS id x;"
    " Mon, 3 Mar 2025 10:00:05 +0000\n"
    "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=a@msg.example\n"
    "From: A <a@msg.example>\nTo: b@recv.example\nSubject: hello\nDate: Mon, 3 Mar 2025 10:00:00 +0000\n"
    "Message-ID: <1@msg.example>\n\nHello there, this is the body.\n"
)
DSN = (
    "From: MAILER-DAEMON@mail.msg.example (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\n"
    "Date: Mon, 3 Mar 2025 10:00:00 +0000\nMessage-ID: <2@mail.msg.example>\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n'
    "This is the mail system at host mail.msg.example.\n"
)


# ------------------------------------------------------------------- detection
def test_looks_like_message() -> None:
    assert looks_like_message(HEADERS)
    assert looks_like_message("From MAILER-DAEMON Mon Mar  3 10:00:00 2025\n" + HEADERS)  # mbox line
    assert looks_like_message("Why did this go to spam?\n```\n" + HEADERS + "```")  # Slack paste with a question
    assert looks_like_message(HEADERS.replace("<1@msg.example>", "&lt;1@msg.example&gt;"))  # Slack-escaped
    assert looks_like_message(HEADERS.split("\n\n")[0])  # headers only, no body


@pytest.mark.parametrize(
    "text",
    [
        DSN,
        "<a@gmail.com>: host gmail-smtp-in.l.google.com[2404:6800::1] said: 550-5.7.1 blocked",
        "Mar  3 10:00:00 mx postfix/smtp[123]: ABC: to=<a@b.example>, relay=x, status=bounced (550 no)",
        "hi team, subject: lunch\nfrom: me",
        "",
        "From: a@b\nTo: c@d\nSubject: x",  # no transport header: too weak to be a message source
        "X-Failed-Recipients: a@b.example\nFrom: x@y.example\nSubject: Mail delivery failed\nMessage-ID: <1@y>\n\nx",
    ],
)
def test_not_a_message(text: str) -> None:
    assert not looks_like_message(text)


def test_detector_is_cheap_on_huge_input() -> None:
    big = "Received: " + "a" * 5_000_000
    t0 = time.monotonic()
    looks_like_message(big)
    looks_like_message("x:" * 2_000_000)
    assert time.monotonic() - t0 < 3  # linear work, not a hang


# ------------------------------------------------------------------- parsing helpers
def test_received_internal_ranges() -> None:
    for ip in ("127.0.0.1", "10.0.0.1", "172.16.5.5", "192.168.0.1", "169.254.1.1", "100.64.0.1", "::1",
               "fe80::1", "fd00::1", "::ffff:10.0.0.1"):  # fmt: skip
        assert is_internal(ip), ip
    for ip in ("192.0.2.10", "203.0.113.1", "198.51.100.7", "2001:db8::1", "8.8.8.8", "100.128.0.1"):
        assert not is_internal(ip), ip


def test_path_skips_authenticated_submission() -> None:
    path = analyse_path([
        "from mail.msg.example (mail.msg.example [192.0.2.10]) by mx.recv.example with ESMTPS id 1; "
        "Mon, 3 Mar 2025 10:00:05 +0000",
        "from [203.0.113.77] (home.isp.example [203.0.113.77]) by mail.msg.example with ESMTPSA id 2; "
        "Mon, 3 Mar 2025 10:00:00 +0000",
    ])  # fmt: skip
    assert path.sending_ip == "192.0.2.10"
    assert [h.delay_s for h in path.hops] == [None, 5.0]


def test_path_ipv6_and_clock_skew() -> None:
    path = analyse_path([
        "from out.msg.example (out.msg.example [IPv6:2001:db8::25]) by mx.recv.example; Mon, 3 Mar 2025 09:00:00 +0000",
        "from pc (pc [fd00::5]) by out.msg.example; Mon, 3 Mar 2025 10:00:00 +0000",
    ])  # fmt: skip
    assert path.sending_ip == "2001:db8::25"
    assert path.skew == [2]


def test_authres_variants() -> None:
    ar = parse_authres("mx.example; spf=pass smtp.mailfrom=x.example; weird!!; dmarc=fail header.from=x.example",
                       "Authentication-Results", 0)  # fmt: skip
    assert ar.parser == "lenient" and [r.method for r in ar.results] == ["spf", "dmarc"]
    arc = parse_authres("i=2; relay.example; dkim=pass header.d=a.example", "ARC-Authentication-Results", 0)
    assert arc.instance == 2 and arc.authserv_id == "relay.example"


def test_japanese_header_decoding() -> None:
    assert decode_header_value("=?ISO-2022-JP?B?GyRCOCtAUT1xJE4kNDBGRmIbKEI=?=") == "見積書のご案内"
    # Split across two encoded words in the middle of a character sequence (common with long subjects).
    assert decode_header_value("=?UTF-8?B?44OG44K5?= =?UTF-8?B?44OI?=") == "テスト"
    assert decode_header_value("=?Shift_JIS?B?g2WDWINn?=") == "テスト"
    assert decode_header_value("=?EUC-JP?B?pcaluaXI?=") == "テスト"
    # Raw Shift_JIS bytes in a header (surrogate-escaped by the parser).
    raw = "テスト".encode("cp932").decode("utf-8", "surrogateescape")
    assert decode_header_value(raw) == "テスト"
    name = "資料\u3000最終.xlsx"
    value = "".join(f"%{b:02X}" for b in name.encode("iso2022_jp"))
    from urllib.parse import unquote

    assert rfc2231_value(("iso-2022-jp", "", unquote(value, encoding="latin-1"))) == name


async def test_offline_run_needs_no_resolver() -> None:
    report = await diagnose_message(HEADERS, None, live=False)
    assert report.kind == "message" and report.subject == "hello"
    assert report.details["sending_ip"] == "192.0.2.10"
    assert not report.blocklists
    assert any("Offline" in n for n in report.notes)
    assert [f for f in report.findings if f.code == "message.verdict"]


async def test_missing_and_malformed_headers() -> None:
    text = "Received: from x (x [192.0.2.1]) by y; Mon, 3 Mar 2025 10:00:00 +0000\nSubject: Quarterly report\n" \
           "Message-ID: no-brackets\nDate: yesterday\n\n" + "Real body text. " * 10  # fmt: skip
    report = await diagnose_message(text, None, live=False)
    problems = {f.evidence["target"]: f for f in report.findings if f.code == "message.missing_header"}
    assert problems["From"].severity == "critical"
    assert "malformed" in problems["Message-ID"].title
    assert "parsed" in problems["Date"].title
    assert all(f.remediation == ["message.fix_headers"] for f in problems.values())


# ------------------------------------------------------------------- hostile input
HOSTILE = {
    "5MB junk": bytes(range(256)) * (5 * 1024 * 1024 // 256),
    "huge header": b"Subject: " + b"A" * 3_000_000 + b"\r\nFrom: a@b.example\r\n\r\nbody",
    "many headers": b"".join(b"X-H%d: v\r\n" % i for i in range(100_000)) + b"\r\nbody",
    "many received": b"".join(b"Received: from a ([203.0.113.%d]) by b; Mon, 3 Mar 2025 10:00:00 +0000\r\n" % (i % 250)
                              for i in range(20_000)) + b"\r\nx",
    "broken mime": b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\nContent-Type: '
                   b"multipart/mixed; boundary=\"q\"\r\n\r\n" * 2000,
    "deep mime": b"From: a@b.example\r\n" + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(500)),
    "many dkim": b"".join(b"DKIM-Signature: v=1; a=rsa-sha256; d=x.example; s=s%d; h=from; bh=AAAA; b=AAAA\r\n" % i
                          for i in range(2000)) + b"From: a@x.example\r\n\r\n" + b"body\r\n" * 100_000,
    "authres bomb": b"Authentication-Results: " + b"x" * 7000 + b"(" * 5000 + b"=" * 5000 + b"\r\nFrom: a@b\r\n\r\nx",
    "long lines": b"From: a@b.example\r\n\r\n" + (b"https://" + b"a." * 200_000 + b"\r\n") * 5,
    "urls": b"From: a@b.example\r\n\r\n" + b"".join(b"http://d%d.example/ " % i for i in range(200_000)),
    "nul": b"\x00" * 1_000_000,
    "empty": b"",
    "text": "日本語だけのテキスト\n" * 1000,
    "html only": b"From: a@b.example\r\nContent-Type: text/html\r\n\r\n" + b"<a href='https://x.example'>" * 100_000,
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_input_never_raises_or_hangs(name: str) -> None:
    t0 = time.monotonic()
    report = await diagnose_message(HOSTILE[name], None, live=False)
    elapsed = time.monotonic() - t0
    assert report.kind == "message"
    assert [f for f in report.findings if f.code == "message.verdict"]
    report.to_dict()
    assert elapsed < 8, (name, elapsed)


def test_fixture_messages_exist() -> None:
    assert (MESSAGES / "README.md").exists()


async def test_a_raw_utf8_attachment_name_is_read_and_its_full_width_space_found() -> None:
    """Japanese mailers often write the filename as raw UTF-8 in the header (RFC 6532)."""
    raw = (
        "From: a@b.example\r\nTo: c@d.example\r\nSubject: Quote\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n"
        "Message-ID: <x@b.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/plain\r\n\r\nHello, the quote for March is attached.\r\n"
        "--XX\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=\"見積書\u30002024年3月.pdf\"\r\n\r\nAAAA\r\n--XX--\r\n"
    ).encode("utf-8")
    report = await diagnose_message(raw, None, live=False)
    (f,) = [f for f in report.findings if f.code == "message.attachment_name"]
    assert f.evidence["value"] == "見積書\u30002024年3月.pdf"
    assert "full-width space" in f.evidence["meaning"] and "garbled" not in f.evidence["meaning"]
