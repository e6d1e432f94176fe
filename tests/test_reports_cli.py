"""`mailcheck reports FILE...` as a user runs it: SPEC's JSON, errors per file, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.dnsworld import DNSWorld

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"
GOOGLE = str(FIXTURES / "google.com!example.com!1795996800!1796083199.zip")


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bot", "reports", *args], input=stdin, capture_output=True,
                          timeout=180, env=env)


def test_json_has_exactly_specs_shape(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a report")
    p = run(GOOGLE, str(FIXTURES / "google-tlsrpt.eml"), str(bad), "--offline", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert list(out) == ["kind", "reports", "findings", "errors"] and out["kind"] == "reports"
    assert [r["type"] for r in out["reports"]] == ["dmarc-aggregate", "tls-rpt"]
    assert out["reports"][0]["dmarc_pass"] == 1200 and out["reports"][0]["dmarc_fail"] == 74
    assert out["errors"] == [{"file": str(bad),
                              "error": "not a DMARC or TLS report (expected XML, JSON, gzip, zip or an email)"}]
    for f in out["findings"]:
        assert set(f) >= {"code", "severity", "title", "detail", "evidence", "remediation"}


def test_no_file_with_a_report_is_exit_2_with_one_line_per_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.xml.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    p = run(str(bad), str(tmp_path / "missing.xml"), "--offline")
    assert p.returncode == 2
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("mailcheck: ") for line in lines)
    assert "Traceback" not in p.stderr.decode()
    p = run(str(bad), "--offline", "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["reports"] == []


def test_a_report_on_stdin() -> None:
    p = run("-", "--offline", "--json", stdin=(FIXTURES / "fastmail-report.eml").read_bytes())
    assert p.returncode == 0, p.stderr
    [report] = json.loads(p.stdout)["reports"]
    assert report["org_name"] == "Fastmail Pty Ltd" and report["messages"] == 20


def test_terminal_report_shows_each_report_and_the_findings() -> None:
    p = run(GOOGLE, "--offline")
    assert p.returncode == 0, p.stderr
    text = p.stdout.decode()
    assert "google.com" in text and "1274" in text and "203.0.113.66" in text
    assert "at p=reject, 74 of 1274 messages would be rejected" in text


def test_japanese_terminal_report() -> None:
    p = run(GOOGLE, "--offline", "--lang", "ja")
    assert p.returncode == 0, p.stderr
    assert "DMARC合格率" in p.stdout.decode()


def test_sources_are_named_through_dns_unless_offline(dns_world: DNSWorld) -> None:
    p = run(GOOGLE, "--json", "--timeout", "5", env=dns_world.env())
    assert p.returncode == 0, p.stderr
    [report] = json.loads(p.stdout)["reports"]
    named = {s["ip"]: (s["ptr"], s["provider"]) for s in report["sources"]}
    assert named["192.0.2.41"] == ("mail-sor-f41.google.com", "Google Workspace / Gmail")
    assert named["192.0.2.42"] == ("o1.ptr1234.sendgrid.net", "Twilio SendGrid")
