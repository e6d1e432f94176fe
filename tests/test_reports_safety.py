"""Anyone can mail a rua= address: hostile or broken files give one clear error line each,
never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
import zlib
from pathlib import Path

import pytest

from handlers.reports import extract
from handlers.reports.api import parse_blob

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"
REPORT = (FIXTURES / "rfc9990-sample.xml").read_bytes()


def one_error(name: str, data: bytes) -> str:
    parsed = parse_blob(name, data)
    assert parsed.reports == []
    assert len(parsed.errors) == 1, parsed.errors
    line = parsed.errors[0]
    assert "\n" not in line and "Traceback" not in line
    return line


def zeros_gzip(size: int) -> bytes:
    """A gzip stream of `size` zero bytes, built without holding them in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    out = [comp.compress(chunk) for _ in range(size // len(chunk))]
    out.append(comp.flush())
    return b"".join(out)


def test_a_gzip_bomb_stops_at_the_size_cap() -> None:
    bomb = zeros_gzip(extract.MAX_DECOMPRESSED + 8 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    assert "limit" in one_error("bomb.xml.gz", bomb)


def test_a_zip_bomb_stops_at_the_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract, "MAX_DECOMPRESSED", 2 * 1024 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.xml", b"<feedback>" + bytes(8 * 1024 * 1024))
    assert "limit" in one_error("bomb.zip", buf.getvalue())


def test_a_zip_with_too_many_members_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(extract.MAX_ZIP_MEMBERS + 1):
            zf.writestr(f"r{i}.xml", REPORT)
    assert "files (limit" in one_error("many.zip", buf.getvalue())


def test_archives_nested_without_end_are_refused() -> None:
    data = REPORT
    for _ in range(extract.MAX_DEPTH + 2):
        data = gzip.compress(data)
    assert "nested too deeply" in one_error("deep.gz", data)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE feedback [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<feedback><report_metadata><org_name>&lol9;</org_name><report_id>1</report_id></report_metadata></feedback>"""


def test_entity_expansion_is_refused() -> None:
    assert "refused" in one_error("laughs.xml", BILLION_LAUGHS)


def test_an_external_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xxe = (f'<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           "<feedback><report_metadata><org_name>&xxe;</org_name><report_id>1</report_id>"
           "</report_metadata></feedback>").encode()
    line = one_error("xxe.xml", xxe)
    assert "refused" in line and "TOP-SECRET" not in line


@pytest.mark.parametrize(("name", "data"), [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(200)),
    ("notes.txt", b"Hello team, the DMARC report is attached (it is not)."),
    ("page.xml", b"<?xml version='1.0'?><html><body>hi</body></html>"),
    ("data.json", b'{"hello": "world"}'),
    ("empty.xml", b""),
    ("letter.eml", b"From: a@example.com\nSubject: hi\n\njust text\n"),
])  # fmt: skip
def test_a_file_that_is_no_report_is_one_clear_line(name: str, data: bytes) -> None:
    line = one_error(name, data)
    assert line.startswith(name)


def test_a_truncated_gzip_is_one_clear_line() -> None:
    data = gzip.compress((FIXTURES / "old-draft.xml").read_bytes())
    assert "truncated" in one_error("cut.xml.gz", data[: len(data) // 2])


def test_broken_xml_is_one_clear_line() -> None:
    assert "broken XML" in one_error("broken.xml", REPORT[: len(REPORT) // 2])


def test_ten_megabytes_of_garbage_is_one_clear_line() -> None:
    garbage = random.Random(13).randbytes(10 * 1024 * 1024)
    one_error("garbage.bin", garbage)


def test_deeply_nested_json_is_refused() -> None:
    one_error("deep.json", b"{" + b'"a":[' * 100_000 + b"]" * 100_000 + b"}")


def test_a_tls_report_with_wrong_types_is_read_as_far_as_it_makes_sense() -> None:
    doc = {"organization-name": ["odd"], "report-id": 7, "policies": [
        {"policy": {"policy-type": "sts", "policy-domain": "example.com", "mx-host": "mx.example.com"},
         "summary": {"total-successful-session-count": "12", "total-failure-session-count": None},
         "failure-details": [{"result-type": "validation-failure", "failed-session-count": "x"}, "junk"]},
        "junk"]}
    [report] = parse_blob("odd.json", json.dumps(doc).encode()).reports
    d = report.to_dict()
    assert (d["org_name"], d["successful_sessions"], d["failed_sessions"]) == ("odd", 12, 0)
    assert d["policies"][0]["mx_host"] == ["mx.example.com"]


def test_an_abuse_feedback_report_is_not_a_dmarc_failure_report() -> None:
    text = (FIXTURES / "dmarc-failure.eml").read_text().replace("Feedback-Type: auth-failure", "Feedback-Type: abuse")
    text = text.replace("Auth-Failure: dmarc\n", "")
    assert "not a DMARC failure report" in one_error("abuse.eml", text.encode())


def test_one_broken_report_in_an_mbox_leaves_the_others_reported() -> None:
    mbox = (FIXTURES / "two-reports.mbox").read_bytes()
    first, second = mbox.split(b"\nFrom dmarc-reports@fastmail.com")
    broken = first + b"\nFrom x@example.com Tue Dec  1 05:00:00 2026\nFrom: x@example.com\nSubject: r\n" \
        b"Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\nH4sIAAAA\n"
    parsed = parse_blob("mixed.mbox", broken)
    assert [r.org_name for r in parsed.reports] == ["Yahoo"]
    assert len(parsed.errors) == 1 and "gzip" in parsed.errors[0]
    assert second  # the fixture holds the second message


def test_records_beyond_the_cap_are_noted_not_read() -> None:
    from handlers.reports.dmarc_aggregate import parse_aggregate

    rows = "".join(f"<record><row><source_ip>192.0.2.{i % 200}</source_ip><count>1</count><policy_evaluated>"
                   "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
                   "<identifiers><header_from>example.com</header_from></identifiers></record>" for i in range(50))
    doc = ("<feedback><report_metadata><org_name>x</org_name><report_id>cap</report_id></report_metadata>"
           f"<policy_published><domain>example.com</domain></policy_published>{rows}</feedback>").encode()
    report = parse_aggregate(doc, max_records=20)
    assert report.truncated and report.rows == 20 and report.messages == 20


def test_a_dtd_behind_comments_and_a_bom_is_still_refused() -> None:
    doc = (b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- report -->\n<?pi x?>\n"
           b'<!DOCTYPE feedback [<!ENTITY a "b">]><feedback><report_metadata><org_name>&a;</org_name>'
           b"<report_id>1</report_id></report_metadata></feedback>")
    assert "refused" in one_error("dtd.xml", doc)


def test_a_report_in_utf16_is_read() -> None:
    [report] = parse_blob("utf16.xml", REPORT.decode().replace("<feedback", '<?xml version="1.0" encoding="UTF-16"?>'
                                                              "\n<feedback", 1).encode("utf-16")).reports
    assert (report.org_name, report.messages) == ("Sample Reporter", 123)


def test_a_record_without_a_source_ip_is_counted_as_skipped_not_guessed() -> None:
    doc = REPORT.replace(b"<source_ip>192.0.2.123</source_ip>", b"<source_ip></source_ip>")
    [report] = parse_blob("noip.xml", doc).reports
    assert (report.messages, report.skipped, report.sources) == (0, 1, [])
    assert report.to_dict()["skipped_records"] == 1


def test_report_dates_in_milliseconds_or_nonsense_are_read_or_left_empty() -> None:
    ms = REPORT.replace(b"<begin>302832000</begin>", b"<begin>302832000000</begin>")
    [report] = parse_blob("ms.xml", ms).reports
    assert report.begin is not None and report.begin.year == 1979
    junk = REPORT.replace(b"<begin>302832000</begin>", b"<begin>99999999999999999999999</begin>")
    [report] = parse_blob("junk.xml", junk).reports
    assert report.begin is None and report.end is not None
