"""knowledge/engine_texts.yaml: both languages, the same placeholders, and every kind of
`unknown` the blocklist engine reports has its text, so a Japanese report says why a
list could not be checked in Japanese."""

from __future__ import annotations

import re
import string
from pathlib import Path

from handlers.blocklists import evaluate
from handlers.i18n import localize_report
from handlers.model import BlocklistResult, Report
from handlers.net import DNSResult, Outcome
from knowledge.blocklists import default_blocklists
from knowledge.engine_texts import engine_text, load_engine_texts

ROOT = Path(__file__).resolve().parent.parent


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def test_every_text_in_both_languages_with_the_same_placeholders() -> None:
    for key, entry in load_engine_texts().items():
        assert isinstance(entry["en"], str) and isinstance(entry["ja"], str), key
        assert _fields(entry["en"]) == _fields(entry["ja"]), key
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", entry["ja"]), key


def test_every_unknown_kind_the_engine_reports_has_a_text() -> None:
    src = (ROOT / "handlers" / "blocklists.py").read_text(encoding="utf-8")
    kinds = set(re.findall(r'why_kind="([a-z_]+)"', src))
    kinds |= set(re.findall(r'Outcome\.[A-Z]+: "([a-z_]+)"', src))
    kinds |= {"refused", "refused_public_resolver", "failed"}
    assert kinds >= {"timeout", "test_failed", "error_code", "outside_loopback"}
    missing = {k for k in kinds if f"why_{k}" not in load_engine_texts()}
    assert not missing, missing


def test_a_japanese_report_says_why_a_list_is_unknown_in_japanese() -> None:
    zen = default_blocklists().get("zen.spamhaus.org")
    assert zen is not None
    timeout = evaluate(zen, DNSResult("2.0.0.127.zen.spamhaus.org", "A", Outcome.TIMEOUT,
                                      error="127.0.0.1:5353 did not answer"))
    assert timeout.status == "unknown" and timeout.why_kind == "timeout"
    rep = Report(kind="ip", subject="192.0.2.1")
    rep.blocklists = [
        BlocklistResult("zen.spamhaus.org", "192.0.2.1", "unknown", [], "", "", "Spamhaus ZEN", "ip4", "",
                        timeout.why, False, timeout.why_kind),
        BlocklistResult("dead.example", "192.0.2.1", "unknown", ["127.0.0.2"], "", "", "Dead", "ip4", "",
                        "the list failed its RFC 5782 test", False, "test_failed"),
    ]
    out = localize_report(rep, "ja")
    first, second = (r.why_unknown for r in out.blocklists)
    # The reason in Japanese, then which server stayed silent (for a ticket), not the English again.
    assert first == f"{engine_text('why_timeout', 'ja')} — 127.0.0.1:5353 から応答がありません", first
    assert second == engine_text("why_test_failed", "ja")
    assert out.blocklists[0].to_dict()["why_kind"] == "timeout"


def test_every_blocklist_return_code_is_explained_in_japanese_too() -> None:
    for entry in default_blocklists().lists:
        for rc in entry.codes:
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", rc.meaning_ja), (entry.zone, rc.code)


def test_a_japanese_report_explains_a_listing_in_japanese() -> None:
    from handlers.model import Finding

    zen = default_blocklists().get("zen.spamhaus.org")
    assert zen is not None
    v = evaluate(zen, DNSResult("4.113.0.203.zen.spamhaus.org", "A", Outcome.NXDOMAIN))
    assert v.status == "clean"
    rep = Report(kind="ip", subject="203.0.113.4")
    rep.blocklists = [BlocklistResult("zen.spamhaus.org", "203.0.113.4", "listed", ["127.0.0.4"],
                                      "XBL - compromised host", "https://check.spamhaus.org/", "Spamhaus ZEN", "ip4")]
    rep.add(Finding("blocklist.listed", "critical", "203.0.113.4 is listed", "x",
                    evidence={"target": "203.0.113.4", "zone": "zen.spamhaus.org", "codes": ["127.0.0.4"],
                              "meaning": "XBL - compromised host"}))
    out = localize_report(rep, "ja")
    xbl = next(rc for rc in zen.codes if rc.code == "127.0.0.4")
    assert out.blocklists[0].meaning == xbl.meaning_ja
    assert xbl.meaning_ja in out.findings[0].detail


def test_the_engines_dns_wording_inside_a_japanese_finding_is_japanese_too() -> None:
    """'the TXT lookup failed: the resolver answered SERVFAIL' is filled into the ja
    template of spf.unknown: it must not switch to English mid-sentence."""
    from handlers.model import Finding

    res = DNSResult("broken.example.", "TXT", Outcome.SERVFAIL, error="SERVFAIL")
    assert res.describe() == "the resolver answered SERVFAIL"  # not "...SERVFAIL: SERVFAIL"
    rep = Report(kind="domain", subject="broken.example")
    rep.add(Finding("spf.unknown", "unknown", "x", "y",
                    evidence={"target": "broken.example", "error": f"the TXT lookup failed: {res.describe()}"}))
    detail = localize_report(rep, "ja").findings[0].detail
    assert "TXT の問い合わせに失敗しました: リゾルバーが SERVFAIL を返しました" in detail, detail
    assert not re.search(r"[a-z]{4,} [a-z]{4,}", detail), detail  # no English words left


def test_detail_phrases_are_valid_and_keep_their_placeholders() -> None:
    from knowledge.detail_phrases import load_phrases, to_japanese

    assert load_phrases()
    assert to_japanese("the A lookup for mx.example.net failed: no answer (timeout)") == (
        "mx.example.net の A の問い合わせに失敗しました: 応答なし（タイムアウト）"
    )
    assert to_japanese("something we never wrote") == "something we never wrote"


def test_quoted_material_in_a_japanese_finding_is_left_as_it_was() -> None:
    """Only the engines' own wording is rewritten: a subject or a record that happens to
    contain such a phrase is quoted exactly."""
    from handlers.model import Finding

    subject = "URGENT: our mail server did not answer!!!"
    rep = Report(kind="message", subject="x")
    rep.add(Finding("message.subject_suspicious", "warning", "x", "y",
                    evidence={"target": "x", "value": subject, "error": "mx.example.net did not answer"}))
    out = localize_report(rep, "ja").findings[0]
    assert out.detail == f"件名: {subject}", out.detail


def test_phrase_rewriting_stays_linear_on_long_words() -> None:
    from knowledge.detail_phrases import to_japanese
    from tests.support.timing import cpu_timed

    text = "x" * 40_000 + " did not answer"
    out, took = cpu_timed(lambda: to_japanese(text))
    assert took < 0.5, took
    assert out == text  # a 40,000-character "server" is no server name


def test_record_syntax_problems_read_in_japanese() -> None:
    import knowledge

    _title, detail = knowledge.localize_finding(
        "mta_sts.invalid", "ja", {"target": "example.com", "error": "id= must be 1-32 letters/digits"}, "t", "d")
    assert "id= は英数字1〜32文字にします" in detail, detail
    _title, detail = knowledge.localize_finding(
        "dmarc.invalid", "ja", {"target": "example.com", "record": "v=DMARC1; p=foo",
                                "error": "p=foo is not a policy (use none, quarantine or reject)"}, "t", "d")
    assert "p=foo はポリシーとして無効です" in detail, detail


def test_spf_syntax_errors_read_in_japanese_with_the_term_quoted_as_written() -> None:
    import knowledge
    from handlers.spf.parser import parse_record

    err = parse_record("v=spf1 ip4:192.0.2.300 -all")
    _title, detail = knowledge.localize_finding(
        "spf.permerror", "ja", {"target": "example.com", "error": err.message}, "t", "d")  # type: ignore[union-attr]
    assert "'ip4:192.0.2.300': '192.0.2.300' に255を超える数があります（IPv4アドレスの4つの数はそれぞれ0〜255です）" in detail, detail


def test_an_ip4_address_error_says_what_is_wrong_with_the_address() -> None:
    from handlers.spf.parser import parse_record

    def message(record: str) -> str:
        err = parse_record(record)
        return str(err.message)  # type: ignore[union-attr]

    # 192.0.2.300 is a complete address: one of its numbers is out of range.
    assert "has a number over 255" in message("v=spf1 ip4:192.0.2.300 -all")
    assert "not a complete" not in message("v=spf1 ip4:192.0.2.300 -all")
    assert "leading zero" in message("v=spf1 ip4:192.0.2.01 -all")
    assert "is not a complete IPv4 address" in message("v=spf1 ip4:192.0.2 -all")
    assert "is not an IPv4 address" in message("v=spf1 ip4:mail.example.com -all")


def test_dkim_failures_and_blocklist_refusals_read_in_japanese() -> None:
    import knowledge
    from knowledge.detail_phrases import to_japanese

    reason = ("body hash mismatch: the body is not what was signed (changed in transit, by a mailing list "
              "footer or a gateway rewriting links, or by the copy you pasted)")
    _title, detail = knowledge.localize_finding(
        "message.dkim_invalid", "ja", {"target": "example.com", "error": reason}, "t", "d")
    assert "本文のハッシュが一致しません" in detail and "body hash" not in detail, detail
    # A list's own refusal hint and error meaning come from the knowledge base in Japanese;
    # only the codes and the environment variable stay as they are.
    text = to_japanese(
        "127.255.255.254: error: Spamhaus refuses queries from public/open resolvers or resolvers without "
        "attributable reverse DNS. Barracuda answers only registered resolvers - register your resolver's IP "
        "at barracudacentral.org or use your own registered resolver."
    )
    assert "Spamhaus refuses" not in text and "registered resolvers" not in text, text
    assert text.startswith("127.255.255.254: エラー:") and ". " not in text, text


def test_a_refused_policy_host_and_a_key_that_could_not_be_fetched_read_in_japanese() -> None:
    from knowledge.detail_phrases import to_japanese

    # handlers/net/safety.py: the MTA-STS policy host is never fetched from private space.
    text = to_japanese("mta-sts.example.com resolves only to non-public addresses (10.0.0.5, fd00::5); not connecting")
    assert text == "mta-sts.example.com の名前解決の結果は非公開のアドレス（10.0.0.5, fd00::5）だけのため、接続しません", text
    # handlers/message/dkimcheck.py: a key lookup that got no answer, and the verifier's own reason.
    text = to_japanese("the key at sel._domainkey.example.com could not be fetched: no answer (timeout)")
    assert text == "sel._domainkey.example.com の鍵を取得できませんでした: 応答なし（タイムアウト）", text
    assert to_japanese("the signature is not valid: signature verification failed") == "署名が無効です: 署名の検証に失敗しました"


def test_a_japanese_requirement_line_names_the_items_that_fail() -> None:
    import knowledge
    from handlers.requirements import Visible, verdicts

    v = Visible(spf="unmet", dkim="met", dmarc="met", ptr="met", sending_ips=["192.0.2.10"])
    yahoo = next(f for f in verdicts("example.com", v) if f.code == "requirements.yahoo")
    title, detail = knowledge.localize_finding(yahoo.code, "ja", yahoo.evidence, yahoo.title, yahoo.detail)
    assert "未達成: 有効なSPFレコード" in title, title
    assert detail.startswith("満たしていない項目: 有効なSPFレコード。"), detail
    assert "満たしている項目: DKIM鍵の公開（1024ビット以上）" in detail and "。。" not in detail, detail
    # Yahoo here is Yahoo Inc.: a Japanese reader must not take it for Yahoo! JAPAN.
    assert "yahoo.com・aol.com" in title and "yahoo.co.jp（Yahoo! JAPAN）は別の会社" in detail, detail
    # Only names, record types and values stay in Latin letters: no English sentence.
    import re

    latin = set(re.findall(r"[A-Za-z]+", detail))
    assert latin <= {"SPF", "DKIM", "DMARC", "FCrDNS", "DNS", "IP", "null", "MX", "From", "Yahoo", "Inc", "yahoo", "com",
                     "aol", "co", "jp", "JAPAN", "p", "none"}, latin
