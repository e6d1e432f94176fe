"""Pastes and files saved as UTF-16 or UTF-32 read exactly like the same text in UTF-8.

Windows tools write "Unicode" text as UTF-16 (Notepad, PowerShell 5's `>` and
Out-File, Outlook's "Save as Unicode text"), with a byte order mark or without.
A binary file must not be mistaken for such text.
"""

from __future__ import annotations

import codecs
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from handlers.bounce import analyse_bounce
from handlers.charsets import guess_decode, to_utf8, wide_encoding
from handlers.message import diagnose_message
from handlers.message.parse import parse_message
from handlers.model import Report

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "bounce_samples"
CORPUS = HERE.parents[1] / "shared" / "corpus" / "bounces" / "emails"

ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-16 with BOM (little-endian)": lambda t: t.encode("utf-16"),
    "utf-16-be with BOM": lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    "utf-16-le without BOM": lambda t: t.encode("utf-16-le"),
    "utf-16-be without BOM": lambda t: t.encode("utf-16-be"),
    "utf-32 with BOM": lambda t: t.encode("utf-32"),
    "utf-32-le without BOM": lambda t: t.encode("utf-32-le"),
    "utf-32-be without BOM": lambda t: t.encode("utf-32-be"),
}

MESSAGE = (
    "Received: from mail.msg.example (mail.msg.example [192.0.2.10]) by mx.google.com with ESMTPS id x;"
    " Mon, 3 Mar 2025 10:00:05 +0000\r\n"
    "Authentication-Results: mx.google.com; spf=pass smtp.mailfrom=a@msg.example; dkim=none; dmarc=fail\r\n"
    "From: =?UTF-8?B?5bGx55Sw?= <a@msg.example>\r\nTo: b@recv.example\r\n"
    "Subject: =?UTF-8?B?44GK55+l44KJ44Gb77yB?= 今すぐクリック\r\n"
    "Date: Mon, 3 Mar 2025 10:00:00 +0000\r\nMessage-ID: <1@msg.example>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    "--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
    "ご確認ください: http://promo.example.net/x 😀\r\n"
    '--b1\r\nContent-Type: application/pdf; name="請求書.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    "JVBERi0xLjQK\r\n--b1--\r\n"
)


def bounce_key(report: Report) -> Any:
    return (
        report.details.get("format"),
        [(b.recipient, b.reason, b.status, b.reply_code, b.provider, b.remote_host) for b in report.bounces],
        sorted((f.code, f.severity, f.title) for f in report.findings),
    )


def message_key(report: Report) -> Any:
    return report.subject, sorted((f.code, f.severity, f.title) for f in report.findings)


def utf8_samples() -> list[Path]:
    paths = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    if CORPUS.is_dir():
        paths += sorted(CORPUS.iterdir())
    out = []
    for p in paths:
        try:
            p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue  # 8-bit charsets: their UTF-16 form is not the same bytes once re-encoded
        out.append(p)
    return out


# -------------------------------------------------------------------- bounces
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_sample_gives_the_same_bounce_analysis_in_utf16_and_utf32(encoding: str) -> None:
    encode = ENCODINGS[encoding]
    samples = utf8_samples()
    assert len(samples) >= 5
    differ = []
    for path in samples:
        raw = path.read_bytes()
        if bounce_key(analyse_bounce(encode(raw.decode("utf-8")))) != bounce_key(analyse_bounce(raw)):
            differ.append(path.name)
    assert not differ, f"{len(differ)} of {len(samples)} differ, e.g. {differ[:5]}"


def test_a_japanese_notice_in_utf16_is_read() -> None:
    raw = (SAMPLES / "iso2022jp_notice.eml").read_bytes()
    report = analyse_bounce(raw.decode("ascii").encode("utf-16"))
    assert [(b.recipient, b.status) for b in report.bounces] == [("taro@example.co.jp", "5.1.1")]
    assert "bounce.not_a_bounce" not in {f.code for f in report.findings}


def test_a_utf16_paste_cut_at_the_size_limit_mid_character_is_still_read() -> None:
    text = (SAMPLES / "gmail_5_7_26.txt").read_text("utf-8")
    whole = analyse_bounce(text.encode("utf-8"))
    cut = analyse_bounce(text.encode("utf-16-le") + "末".encode("utf-16-le")[:1])  # odd length
    assert bounce_key(cut)[1] == bounce_key(whole)[1] and whole.bounces


# -------------------------------------------------------------------- messages
@pytest.mark.parametrize("encoding", list(ENCODINGS))
async def test_a_message_in_utf16_or_utf32_gets_the_same_diagnosis(encoding: str) -> None:
    data = ENCODINGS[encoding](MESSAGE)
    pm = parse_message(data)
    assert pm.decoded("Subject") == "お知らせ！ 今すぐクリック"
    assert "promo.example.net" in pm.url_hosts
    assert [a.filename for a in pm.attachments] == ["請求書.pdf"]
    want = message_key(await diagnose_message(MESSAGE.encode("utf-8"), None, live=False))
    assert message_key(await diagnose_message(data, None, live=False)) == want


# -------------------------------------------------------------------- the CLI
def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "--json", *args], capture_output=True, text=True,
                          timeout=60, cwd=HERE.parent)


def test_the_cli_reads_utf16_files_like_utf8_ones(tmp_path: Path) -> None:
    text = (SAMPLES / "postfix_gmail_ipv6_ndr.txt").read_text("utf-8")
    (tmp_path / "u8.txt").write_bytes(text.encode("utf-8"))
    (tmp_path / "u16.txt").write_bytes(text.encode("utf-16"))
    (tmp_path / "m16.eml").write_bytes(MESSAGE.encode("utf-16-le"))
    (tmp_path / "m8.eml").write_bytes(MESSAGE.encode("utf-8"))
    u8, u16 = run_cli(["bounce", str(tmp_path / "u8.txt")]), run_cli(["bounce", str(tmp_path / "u16.txt")])
    assert u16.returncode == u8.returncode and "Traceback" not in u16.stderr
    assert json.loads(u16.stdout)["bounces"] == json.loads(u8.stdout)["bounces"] != []
    m8, m16 = (run_cli(["message", "--offline", str(tmp_path / n)]) for n in ("m8.eml", "m16.eml"))
    assert m16.returncode == m8.returncode, m16.stderr
    assert json.loads(m16.stdout)["subject"] == json.loads(m8.stdout)["subject"] == "お知らせ！ 今すぐクリック"


# -------------------------------------------------------------------- binary input
def _binaries() -> dict[str, bytes]:
    rng = random.Random(19)
    return {
        "random bytes": bytes(rng.getrandbits(8) for _ in range(20000)),
        "an executable": Path(sys.executable).read_bytes()[:65536],
        "a PNG": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + zlib.compress(os.urandom(5000)),
        "16-bit samples near zero": b"".join(struct.pack("<h", rng.randint(-200, 200)) for _ in range(5000)),
        "16-bit counters below 256": b"".join(struct.pack("<H", i % 256) for i in range(5000)),
        "32-bit little-endian integers": b"".join(struct.pack("<I", rng.randint(0, 300)) for _ in range(3000)),
        "zero padding": b"\x00" * 8192,
        "a UTF-16 BOM before binary": codecs.BOM_UTF16_LE + bytes(rng.getrandbits(8) for _ in range(4000)),
    }


@pytest.mark.parametrize("name", list(_binaries()))
def test_binary_data_is_not_taken_for_utf16(name: str) -> None:
    data = _binaries()[name]
    assert wide_encoding(data) is None
    assert to_utf8(data) is data
    assert "bounce.not_a_bounce" in {f.code for f in analyse_bounce(data).findings}


def test_plain_and_japanese_8bit_text_is_untouched() -> None:
    for data in (b"550 5.1.1 user unknown\n", "配信できませんでした 550 5.1.1\n".encode("cp932"),
                 "配信できませんでした\n".encode("iso2022_jp"), "配信できませんでした\n".encode("euc_jp")):
        assert wide_encoding(data) is None and to_utf8(data) is data
    assert guess_decode("配信 550 5.1.1".encode("utf-16")) == "配信 550 5.1.1"


def test_text_padded_with_nuls_is_read_as_it_is() -> None:
    data = b"550 5.1.1 <a@example.com>: user unknown\n" + b"\x00" * 4000  # NULs everywhere: not UTF-16
    assert to_utf8(data) is data
    assert [b.reason for b in analyse_bounce(data).bounces] == ["userunknown"]
