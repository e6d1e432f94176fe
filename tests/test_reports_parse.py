"""Receiver reports as they arrive: every reporter's shape and wrapper gives the totals
the report holds (the same totals parsedmarc gives for these files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.reports.api import ParsedReport, parse_blob

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"


def parse(name: str) -> list[ParsedReport]:
    parsed = parse_blob(name, (FIXTURES / name).read_bytes())
    assert parsed.errors == []
    return parsed.reports


# file, org_name, domain, messages, dmarc_pass
AGGREGATE = [
    ("google.com!example.com!1795996800!1796083199.zip", "google.com", "example.com", 1274, 1200),
    ("protection.outlook.com!example.com!1795996800!1796083200.xml.gz", "Outlook.com", "example.com", 312, 310),
    ("enterprise.protection.outlook.com!example.org!1795996800!1796083200.xml", "Enterprise Outlook",
     "example.org", 80, 75),
    ("yahoo.com!example.com!1795996800!1796083199.xml.gz", "Yahoo", "example.com", 100, 88),
    ("fastmail-report.eml", "Fastmail Pty Ltd", "example.com", 20, 17),
    ("mimecast-report.eml", "mimecast.org", "example.com", 9, 9),
    ("rfc9990-sample.xml", "Sample Reporter", "example.com", 123, 123),
    ("old-draft.xml", "acme.com", "example.com", 2, 2),
    ("quirks-latin1.xml", "Société Exemple", "example.net", 7, 5),
    ("base64-report.eml", "google.com", "example.com", 1274, 1200),
    ("qp-report.eml", "Enterprise Outlook", "example.org", 80, 75),
]


@pytest.mark.parametrize(("name", "org", "domain", "messages", "passed"), AGGREGATE)
def test_each_reporters_aggregate_report_gives_its_totals(name: str, org: str, domain: str, messages: int,
                                                         passed: int) -> None:
    [report] = parse(name)
    assert report.type == "dmarc-aggregate"
    assert (report.org_name, report.domain, report.messages, report.dmarc_pass) == (org, domain, messages, passed)
    assert report.dmarc_fail == messages - passed
    assert report.report_id and report.begin is not None and report.end is not None
    assert sum(s.messages for s in report.sources) == messages


def test_one_source_per_ip_adds_up_its_rows() -> None:
    [report] = parse("google.com!example.com!1795996800!1796083199.zip")
    by_ip = {s.ip: s for s in report.sources}
    assert list(by_ip) == ["192.0.2.41", "192.0.2.42", "203.0.113.66"]  # largest first
    sendgrid = by_ip["192.0.2.42"].to_dict()
    assert sendgrid["messages"] == 44 and sendgrid["dmarc"] == "fail"
    assert sendgrid["spf_aligned"] is False and sendgrid["dkim_aligned"] is False
    assert sendgrid["dkim"] == [{"domain": "sendgrid.net", "selector": "smtpapi", "result": "pass", "messages": 44}]
    google = by_ip["192.0.2.41"].to_dict()
    assert google["dmarc"] == "pass" and google["spf_aligned"] and google["dkim_aligned"]


def test_spec_json_fields_of_an_aggregate_report() -> None:
    [report] = parse("google.com!example.com!1795996800!1796083199.zip")
    d = report.to_dict()
    assert {"type", "org_name", "report_id", "domain", "begin", "end", "messages", "dmarc_pass", "dmarc_fail",
            "sources"} <= set(d)
    assert d["begin"] == "2026-11-30T00:00:00Z" and d["end"] == "2026-11-30T23:59:59Z"
    for s in d["sources"]:
        assert {"ip", "messages", "dmarc", "spf_aligned", "dkim_aligned", "disposition", "ptr", "provider"} <= set(s)


@pytest.mark.parametrize("name", [p.name for p in sorted(FIXTURES.iterdir()) if p.suffix != ".py"])
def test_every_report_survives_a_json_round_trip(name: str) -> None:
    for report in parse(name):
        text = json.dumps(report.to_dict())
        again = ParsedReport.from_dict(json.loads(text))
        assert again.to_dict() == report.to_dict()
        assert again.key == report.key


def test_quirky_reporters_are_read_leniently() -> None:
    [report] = parse("quirks-latin1.xml")  # Latin-1 bytes under a UTF-8 declaration
    assert report.org_name == "Société Exemple"
    good, bad = report.sources
    assert good.dmarc == "pass" and good.dkim[0].result == "pass"  # upper-case PASS
    assert bad.spf[0].result == "fail"  # "hardfail"
    assert bad.reasons == []  # an empty <reason> is no reason


def test_rfc9990_report_keeps_its_policy_fields() -> None:
    [report] = parse("rfc9990-sample.xml")
    assert report.policy == {"p": "quarantine", "sp": "none", "np": "none", "testing": "n",
                             "discovery_method": "treewalk"}
    assert report.sources[0].disposition == "pass"
    assert report.sources[0].dkim[0].selector == "abc123"


def test_a_forwarders_override_reason_is_kept() -> None:
    [report] = parse("fastmail-report.eml")
    forwarded = next(s for s in report.sources if s.ip == "198.51.100.80")
    assert forwarded.reasons == ["forwarded"]


def test_an_mbox_gives_every_report_in_it() -> None:
    reports = parse("two-reports.mbox")
    assert [(r.org_name, r.messages) for r in reports] == [("Yahoo", 100), ("Fastmail Pty Ltd", 20)]


def test_google_tls_report_in_its_email() -> None:
    [report] = parse("google-tlsrpt.eml")
    d = report.to_dict()
    assert (d["type"], d["org_name"], d["domain"]) == ("tls-rpt", "Google Inc.", "example.com")
    assert (d["successful_sessions"], d["failed_sessions"]) == (100, 2)
    assert d["failures"] == [{"result_type": "certificate-expired", "sessions": 2}]
    assert d["policies"][0]["policy_type"] == "sts"
    assert d["policies"][0]["failures"][0]["receiving_mx_hostname"] == "mx2.example.com"


def test_mail_ru_tls_report_counts_the_summary_and_the_details() -> None:
    [report] = parse("mail.ru!example.com!1795996800!1796083200.json")
    d = report.to_dict()
    assert (d["org_name"], d["successful_sessions"], d["failed_sessions"]) == ("Mail.ru", 0, 1)
    # The details name two failed fetches although the summary counts one: both are shown.
    assert d["failures"] == [{"result_type": "sts-policy-fetch-error", "sessions": 2}]


def test_failure_report_keeps_what_failed_and_no_personal_data() -> None:
    [report] = parse("dmarc-failure.eml")
    d = report.to_dict()
    assert (d["type"], d["domain"], d["source_ip"], d["auth_failure"]) == (
        "dmarc-failure", "example.com", "203.0.113.66", "dmarc")
    assert d["dkim_selector"] == "s2024" and d["begin"] == "2026-12-01T09:20:27Z"
    text = json.dumps(d)
    for private in ("alice", "bob", "secret", "invoice", "IBAN", "Alice Private", "receiver.example"):
        assert private not in text, private


def test_a_report_email_forwarded_as_an_attachment() -> None:
    inner = (FIXTURES / "fastmail-report.eml").read_text()
    outer = "\n".join([
        "From: Ops <ops@example.com>", "To: dmarc-bot@example.com", "Subject: Fwd: Report Domain: example.com",
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="fwd"', "", "--fwd",
        "Content-Type: text/plain", "", "see attached", "--fwd", "Content-Type: message/rfc822", "",
        inner, "--fwd--", ""])
    [report] = parse_blob("fwd.eml", outer.encode()).reports
    assert (report.org_name, report.messages) == ("Fastmail Pty Ltd", 20)


def test_a_failure_report_whose_fields_are_base64_encoded() -> None:
    import base64

    text = (FIXTURES / "dmarc-failure.eml").read_text()
    start = text.index("Feedback-Type:")
    end = text.index("\n--_----ruf1", start)
    encoded = (text[:start].replace("Content-Type: message/feedback-report\n",
                                    "Content-Type: message/feedback-report\nContent-Transfer-Encoding: base64\n")
               + base64.encodebytes(text[start:end].encode()).decode() + text[end:])
    [report] = parse_blob("b64.eml", encoded.encode()).reports
    assert (report.source_ip, report.auth_failure, report.domain) == ("203.0.113.66", "dmarc", "example.com")


def test_a_report_email_with_a_long_header_block_and_an_empty_first_header() -> None:
    text = (FIXTURES / "mimecast-report.eml").read_text()
    noise = "".join(f"X-MS-Exchange-Organization-Note-{i}:\n value {i} {'x' * 60}\n" for i in range(300))
    [report] = parse_blob("long.eml", ("Return-Path:\n <no-reply@au-1.mimecastreport.com>\n" + noise + text).encode()
                          ).reports
    assert report.org_name == "mimecast.org"
