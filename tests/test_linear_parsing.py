"""Every parser of pasted input is linear: four times the input costs about four times the CPU.

SPEC: any paste is answered within 10 s. Quadratic steps (a header's pieces re-summed
on every continuation line, bytes `+=` per folded line in dkimpy's parser, every open
MIME level's boundary regex tried on every line) made a 13k-line folded header take
6 s and a 2 MB .eml 18.8 s. Each case below parses N and 4N units in one run and
compares CPU time (garbage collector paused, tests/support/timing.py): linear work
grows about 4x, quadratic work 16x; the bound of 6x leaves room for noise. No
wall-clock limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from handlers.bounce import analyse_bounce
from handlers.message.engine import _static_phase as read_message  # the CPU part of diagnose_message
from tests.support.timing import cpu_timed

GROWTH = 6.0
FLOOR = 0.02  # seconds: below this the small input's time is mostly noise

HEAD = (b"From: Sender <a@example.com>\r\nTo: b@example.net\r\nSubject: hello\r\n"
        b"Date: Mon, 3 Mar 2025 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n")
DKIM = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from:to; bh=AAAA; b=AAAA\r\n"


def growth(build: Callable[[int], bytes], parse: Callable[[bytes], Any], n: int) -> float:
    small, large = build(n), build(4 * n)
    parse(small)  # warm up: knowledge files, compiled regexes
    # The best of five: a busy machine (CI's other jobs, cache contention) only adds time.
    t1 = min(cpu_timed(lambda: parse(small))[1] for _ in range(5))
    t4 = min(cpu_timed(lambda: parse(large))[1] for _ in range(5))
    return t4 / max(t1, FLOOR)


def folded_header(n: int) -> bytes:
    return DKIM + HEAD + b"X-Long: start\r\n" + b" x\r\n" * n + b"\r\nbody\r\n"


def many_folded_headers(n: int) -> bytes:
    return HEAD + b"".join(b"X-F%d: a\r\n b\r\n\tc\r\n" % i for i in range(n)) + b"\r\nbody\r\n"


def many_headers(n: int) -> bytes:
    return HEAD + b"".join(b"X-H%d: value\r\n" % i for i in range(n)) + b"\r\nbody\r\n"


def huge_header(n: int) -> bytes:
    return HEAD + b"X-Huge: " + b"ab " * n + b"\r\n\r\nbody\r\n"


def huge_content_type(n: int) -> bytes:
    return HEAD + b"MIME-Version: 1.0\r\nContent-Type: text/plain; " + b'a="b;"; ' * n + b"\r\n\r\nbody\r\n"


def eml_with_attachments(n: int) -> bytes:
    part = (b'--B\r\nContent-Type: application/pdf; name="f%d.pdf"\r\nContent-Disposition: attachment; '
            b'filename="f%d.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b"QUFBQUFBQUFBQUFBQUFBQUFB\r\n" * 40)
    return (DKIM + HEAD + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
            + b"".join(part % (i, i) for i in range(n)) + b"--B--\r\n")


def deep_nesting(n: int) -> bytes:
    # n nested multipart levels (the email package reads up to 50), each with a text
    # part of its own, some of whose lines look like boundaries without being one:
    # every open level's boundary used to be tried on every line (levels x lines).
    text = b"--b0\r\nContent-Type: text/plain\r\n\r\n" + b"text\r\n--b1x\r\n\r\n" * 300
    out = HEAD + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    for i in range(1, n):
        out += text.replace(b"--b0", b"--b%d" % (i - 1), 1)
        out += b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i - 1, i)
    out += text.replace(b"--b0", b"--b%d" % (n - 1), 1)
    return out + b"".join(b"--b%d--\r\n" % i for i in range(n - 1, -1, -1))


def many_received(n: int) -> bytes:
    return b"".join(b"Received: from h%d.example.net (h%d.example.net [192.0.2.%d]) by mx.example.org with ESMTPS"
                    b" id x%d; Mon, 3 Mar 2025 10:00:00 +0000\r\n" % (i, i, i % 250, i) for i in range(n)) + HEAD + b"\r\nx\r\n"


def many_auth_results(n: int) -> bytes:
    return b"".join(b"Authentication-Results: mx%d.example.org; spf=pass smtp.mailfrom=a@example.com;"
                    b" dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n" % i
                    for i in range(n)) + HEAD + b"\r\nx\r\n"


def body_with_urls(n: int) -> bytes:
    return HEAD + b"Content-Type: text/html\r\n\r\n" + b"<p><a href='http://u.example/'>x</a> www.w.example<br>" * n


MESSAGE_CASES = {
    "one header folded over many lines": (folded_header, 20_000),
    "many folded headers": (many_folded_headers, 4_000),
    "many headers": (many_headers, 8_000),
    "one huge header": (huge_header, 100_000),
    "a Content-Type with many parameters": (huge_content_type, 20_000),
    "a 2 MB .eml with many attachments": (eml_with_attachments, 450),
    "deep MIME nesting": (deep_nesting, 12),
    "many Received lines": (many_received, 5_000),
    "many Authentication-Results": (many_auth_results, 5_000),
    "an HTML body full of links": (body_with_urls, 10_000),
}


@pytest.mark.parametrize("case", list(MESSAGE_CASES))
def test_reading_a_message_is_linear(case: str) -> None:
    build, n = MESSAGE_CASES[case]
    assert growth(build, read_message, n) < GROWTH


def test_a_folded_header_costs_about_what_the_same_bytes_cost_in_a_body() -> None:
    lines = b" word\r\n" * 100_000
    folded = DKIM + HEAD + b"X-Long: start\r\n" + lines + b"\r\nbody\r\n"
    in_body = DKIM + HEAD + b"X-Long: start\r\n\r\n" + lines
    read_message(folded)
    t_folded = min(cpu_timed(lambda: read_message(folded))[1] for _ in range(3))
    t_body = min(cpu_timed(lambda: read_message(in_body))[1] for _ in range(3))
    assert t_folded < 4 * max(t_body, FLOOR)


@pytest.mark.parametrize("levels", [12, 80])
def test_a_deeply_nested_message_is_still_read(levels: int) -> None:
    pm = read_message(deep_nesting(levels)).pm
    assert pm.decoded("Subject") == "hello"
    assert "text" in pm.body_text
    assert pm.defects  # what was skipped is said, not silently dropped


def _dsn(recipient_fields: bytes) -> bytes:
    return (b'From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; '
            b'report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n\r\nfailed\r\n--b\r\n'
            b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
            b"Final-Recipient: rfc822; u@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            + recipient_fields + b"\r\n--b--\r\n")


BOUNCE_CASES = {
    "a folded header": (lambda n: b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\nX-Long: a\r\n"
                        + b" x\r\n" * n + b"\r\n550 5.1.1 <a@example.com>: no such user\r\n", 20_000),
    "many headers": (lambda n: b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n"
                     + b"".join(b"X-H%d: v\r\n" % i for i in range(n))
                     + b"\r\n550 5.1.1 <a@example.com>: no such user\r\n", 8_000),
    "many recipients in text": (lambda n: b"".join(b"<u%d@example.org>: host mx.example.org said: 550 5.1.1 no such"
                                                   b" user\r\n" % i for i in range(n)), 1_500),
    "a DSN with many recipients": (lambda n: (
        b'From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail\r\nContent-Type: multipart/report; '
        b'report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n\r\nfailed\r\n--b\r\n'
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        + b"".join(b"Final-Recipient: rfc822; u%d@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                   b"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n" % i for i in range(n)) + b"--b--\r\n"), 1_500),
    "a DSN field folded over many lines": (lambda n: _dsn(b"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
                                                         + b" more\r\n" * n), 20_000),
    "a Diagnostic-Code continued without indentation": (lambda n: _dsn(b"Diagnostic-Code: smtp; 550-5.1.1 no\r\n"
                                                                       + b"550-5.1.1 such user\r\n" * n), 10_000),
    "MTA log lines": (lambda n: b"".join(b"Mar  3 10:00:00 mx postfix/smtp[1]: A%d: to=<u%d@example.com>, relay=mx."
                                         b"example.com[192.0.2.1]:25, dsn=5.1.1, status=bounced (550 5.1.1 no)\r\n"
                                         % (i, i) for i in range(n)), 1_500),
    "nested MIME parts": (lambda n: b"From: MAILER-DAEMON@mx.example\r\nSubject: fail\r\n" + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(n))
        + b"\r\n550 5.1.1 <a@example.com> no such user\r\n", 6_000),  # 3,000 ran ~25 ms: near the noise floor
    "a wrapped reply (indented continuation lines)": (
        lambda n: b"550-5.7.25 The IP address sending this message does not have a\n" + b"    PTR record\n" * n, 5_000),
    "a UTF-16 paste": (lambda n: ("<user@example.org>: host mx.example.org said: 550 5.1.1 no such user\r\n" * n)
                       .encode("utf-16"), 3_000),
}


@pytest.mark.parametrize("case", list(BOUNCE_CASES))
def test_reading_a_bounce_is_linear(case: str) -> None:
    build, n = BOUNCE_CASES[case]
    assert growth(build, analyse_bounce, n) < GROWTH
