"""What a team reads about its receiver reports: pass rate, who fails and why, what is new,
what p=reject would do, TLS failures with the fix. Sources are named through the real DNS
world (tests/fixtures/zones/2.0.192.in-addr.arpa.zone: 192.0.2.41 is a Google outbound
name, 192.0.2.42 a SendGrid one; 203.0.113.0/24 has no reverse zone)."""

from __future__ import annotations

from pathlib import Path

from handlers.i18n import localized_copy
from handlers.model import Report
from handlers.reports.api import ParsedReport, parse_blob, summarize
from tests.dnsworld import DNSWorld

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"
GOOGLE = "google.com!example.com!1795996800!1796083199.zip"
YAHOO = "yahoo.com!example.com!1795996800!1796083199.xml.gz"


def load(*names: str) -> list[ParsedReport]:
    out: list[ParsedReport] = []
    for name in names:
        out += parse_blob(name, (FIXTURES / name).read_bytes()).reports
    return out


def codes(report: Report, code: str) -> list[dict[str, object]]:
    return [f.evidence for f in report.findings if f.code == code]


async def test_sources_are_named_by_their_ptr_with_one_lookup_per_ip(dns_world: DNSWorld) -> None:
    resolver = dns_world.resolver(timeout=5.0)
    report = await summarize(load(GOOGLE, YAHOO), resolver, blocklists=False)
    sources = {s["ip"]: s for r in report.details["reports"] for s in r["sources"]}
    assert sources["192.0.2.41"]["ptr"] == "mail-sor-f41.google.com"
    assert sources["192.0.2.41"]["provider"] == "Google Workspace / Gmail"
    assert sources["192.0.2.42"]["provider"] == "Twilio SendGrid"
    assert sources["203.0.113.66"]["ptr"] is None  # no answer: nothing said
    assert resolver.stats.lookups == 3  # three distinct IPs in two reports


async def test_a_failing_source_says_which_check_failed_and_why(dns_world: DNSWorld) -> None:
    report = await summarize(load(GOOGLE), dns_world.resolver(timeout=5.0), blocklists=False)
    failing = {str(e["ip"]): e for e in codes(report, "reports.failing_source")}
    assert set(failing) == {"192.0.2.42", "203.0.113.66"}
    sendgrid = failing["192.0.2.42"]
    assert sendgrid["count"] == 44 and sendgrid["provider"] == "Twilio SendGrid"
    assert "DKIM passed for d=sendgrid.net (selector smtpapi), which is not aligned with example.com" in str(
        sendgrid["why"])
    assert "SPF passed for em1234.sendgrid.net, which is not aligned" in str(sendgrid["why"])
    spoofer = failing["203.0.113.66"]
    assert "no DKIM signature" in str(spoofer["why"]) and "SPF softfail for example.com" in str(spoofer["why"])
    title = next(f.title for f in report.findings if f.code == "reports.failing_source")
    assert title == "example.com: 44 messages from 192.0.2.42 failed DMARC"


async def test_pass_rate_and_what_p_reject_would_do() -> None:
    report = await summarize(load(GOOGLE), None)
    [rate] = codes(report, "reports.pass_rate")
    assert (rate["rate"], rate["messages"], rate["count"], rate["policy"]) == ("94.2%", 1274, 74, "none")
    [what_if] = codes(report, "reports.what_if_reject")
    assert what_if["count"] == 74 and what_if["sources"] == ["192.0.2.42", "203.0.113.66"]
    assert "at p=reject, 74 of 1274 messages would be rejected" in next(
        f.title for f in report.findings if f.code == "reports.what_if_reject")


async def test_a_first_summary_names_no_new_sources() -> None:
    report = await summarize(load(GOOGLE), None)
    assert codes(report, "reports.new_source") == [] and codes(report, "reports.reporter_stopped") == []


async def test_new_sources_and_reporters_that_stopped_since_the_last_summary() -> None:
    report = await summarize(load(GOOGLE), None, previous=load(YAHOO))
    new = codes(report, "reports.new_source")
    assert [e["ip"] for e in new] == ["192.0.2.42"]  # 192.0.2.41 and 203.0.113.66 were in Yahoo's report
    assert next(f.severity for f in report.findings if f.code == "reports.new_source") == "warning"
    [stopped] = codes(report, "reports.reporter_stopped")
    assert stopped["reporters"] == ["Yahoo"]


async def test_dkim_selectors_seen_are_listed_and_kept_for_the_domain_audit() -> None:
    report = await summarize(load(GOOGLE), None)
    [sel] = codes(report, "reports.dkim_selectors")
    assert sel["selectors"] == ["google (example.com)", "smtpapi (sendgrid.net)"]
    assert report.details["selectors"] == {"example.com": ["google"]}


async def test_tls_failures_come_with_the_fix_for_their_result_type() -> None:
    report = await summarize(load("google-tlsrpt.eml", "mail.ru!example.com!1795996800!1796083200.json"), None)
    failures = [f for f in report.findings if f.code == "reports.tls_failure"]
    assert {(f.evidence["result_type"], f.evidence["count"]) for f in failures} == {
        ("certificate-expired", 2), ("sts-policy-fetch-error", 2)}
    fixes = {f.evidence["result_type"]: f.remediation for f in failures}
    assert fixes == {"certificate-expired": ["reports.tls_certificate_expired"],
                     "sts-policy-fetch-error": ["reports.tls_sts_policy_fetch_error"]}
    expired = next(f for f in failures if f.evidence["result_type"] == "certificate-expired")
    assert expired.evidence["host"] == ["mx2.example.com"]
    assert "2 of 103 sessions" in expired.detail  # both reporters: 100 + 0 successful, 2 + 1 failed


async def test_a_failure_report_is_summarised_without_personal_data() -> None:
    report = await summarize(load("dmarc-failure.eml"), None)
    [f] = [f for f in report.findings if f.code == "reports.failure_report"]
    assert f.title == "example.com: DMARC failure report for 203.0.113.66 (dmarc)"
    assert "alice" not in f.detail and "invoice" not in f.detail


async def test_the_same_report_twice_counts_once() -> None:
    report = await summarize(load(GOOGLE, "base64-report.eml"), None)
    assert len(report.details["reports"]) == 1
    [rate] = codes(report, "reports.pass_rate")
    assert rate["messages"] == 1274


async def test_the_summary_reads_in_japanese() -> None:
    report = localized_copy(await summarize(load(GOOGLE), None), "ja")
    titles = {f.code: f.title for f in report.findings}
    assert titles["reports.what_if_reject"] == "example.com を p=reject にすると、1274通中74通が拒否されます"
    detail = next(f.detail for f in report.findings if f.code == "reports.failing_source")
    assert "DKIM署名がありません" in detail or "アラインメント" in detail


async def test_the_largest_sources_blocklist_state_comes_from_the_blocklist_engine(dns_world: DNSWorld) -> None:
    report = await summarize(load(GOOGLE), dns_world.resolver(timeout=5.0))
    sources = {s["ip"]: s for r in report.details["reports"] for s in r["sources"]}
    assert all(isinstance(s["blocklists"], list) for s in sources.values())  # three sources: all looked up
    assert {row.target for row in report.blocklists} == set(sources)


async def test_the_pass_rate_carries_the_last_summarys_for_comparison() -> None:
    report = await summarize(load(GOOGLE), None, previous=load(YAHOO))
    [rate] = codes(report, "reports.pass_rate")
    assert (rate["pass_ratio"], rate["previous_ratio"]) == (0.9419, 0.88)


async def test_a_report_of_100k_records_is_read_whole_and_summarised_briefly() -> None:
    import gzip

    rows = []
    for i in range(100_000):
        ip = f"198.51.100.{i % 200 + 1}" if i % 4 else f"203.0.113.{i % 250 + 1}"
        verdict = "pass" if i % 4 else "fail"
        rows.append(f"<record><row><source_ip>{ip}</source_ip><count>2</count><policy_evaluated>"
                    f"<disposition>none</disposition><dkim>{verdict}</dkim><spf>fail</spf></policy_evaluated>"
                    "</row><identifiers><header_from>example.com</header_from></identifiers></record>")
    doc = ("<feedback><report_metadata><org_name>big.example</org_name><report_id>big-1</report_id>"
           "<date_range><begin>1795996800</begin><end>1796083199</end></date_range></report_metadata>"
           "<policy_published><domain>example.com</domain><p>none</p></policy_published>"
           + "".join(rows) + "</feedback>").encode()
    [parsed] = parse_blob("big.xml.gz", gzip.compress(doc, 1)).reports
    assert (parsed.rows, parsed.messages, parsed.dmarc_pass) == (100_000, 200_000, 150_000)
    assert len(parsed.sources) == 275  # 150 passing, 125 failing addresses
    report = await summarize([parsed], None)
    assert len(codes(report, "reports.failing_source")) == 10
    [more] = codes(report, "reports.more_failing_sources")
    assert more["count"] == 115 and more["messages"] == 50_000 - sum(
        int(str(e["count"])) for e in codes(report, "reports.failing_source"))
