"""`mailcheck logs`: a whole mail log read as an admin reads it -- totals exactly as
pflogsumm counts them, per provider with reasons, per message, with findings."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.logs_vs_pflogsumm import generate
from handlers.logs import analyse_logs

FIX = Path(__file__).parent / "fixtures" / "logs"
CAPTURE = Path(__file__).parent / "fixtures" / "postfix" / "maillog"  # a real Postfix run (tools/postfix_capture.py)
PFLOGSUMM = "/usr/sbin/pflogsumm"

needs_pflogsumm = pytest.mark.skipif(not os.path.exists(PFLOGSUMM), reason="pflogsumm (Debian package) not installed")


def pflogsumm(*paths: Path) -> dict[str, int]:
    out = subprocess.run([PFLOGSUMM, "--detail", "0", *map(str, paths)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    found: dict[str, int] = {}
    for key in ("delivered", "forwarded", "deferred", "bounced", "rejected"):
        m = re.search(rf"^\s+(\d+)\s+{key}", out, re.M)
        assert m, out
        found[key] = int(m.group(1))
    m = re.search(r"\((\d+)\s+deferrals\)", out)
    found["deferrals"] = int(m.group(1)) if m else 0
    return found


def summary(*paths: Path, **kw: Any) -> dict[str, Any]:
    return analyse_logs([str(p) for p in paths], **kw).to_dict()


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bot", "logs", *args], input=stdin, capture_output=True, timeout=120,
                          cwd=Path(__file__).parent.parent)


def provider(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["providers"] if p["provider"] == name)


def codes(data: dict[str, Any]) -> list[str]:
    return [f["code"] for f in data["findings"]]


# -- totals: exactly pflogsumm's ----------------------------------------------------------
@needs_pflogsumm
@pytest.mark.parametrize("name", ["capture", "postfix_cases.log", "postfix_cases_rfc3339.log"])
def test_totals_equal_pflogsumm_on_the_same_file(name: str) -> None:
    path = CAPTURE if name == "capture" else FIX / name
    ours = summary(path)["totals"]
    theirs = pflogsumm(path)
    assert {k: ours[k] for k in theirs} == theirs


@needs_pflogsumm
def test_totals_equal_pflogsumm_on_a_generated_day_with_many_providers(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    generate(log, 3 << 20, seed=7)
    ours = summary(log)["totals"]
    theirs = pflogsumm(log)
    assert {k: ours[k] for k in theirs} == theirs
    assert theirs["delivered"] > 1000 and theirs["bounced"] > 50 and theirs["rejected"] > 20


def test_content_filter_hand_off_counts_as_delivered_like_pflogsumm_but_is_one_message() -> None:
    data = summary(FIX / "postfix_cases.log")
    # relay=127.0.0.1[127.0.0.1]:10024 ... queued as 4Y7A8B9C0D -> virtual: mailbox full
    chain = next(t for t in data["timelines"] if t["queue_id"] == "4Y7A8B9C0D")
    assert [e["status"] for e in chain["events"]] == ["delivered", "bounced"]
    assert chain["events"][0]["provider"] == "content-filter"
    assert chain["outcome"] == "bounced"
    assert data["messages"] == 11  # the filtered message once, the forwarded alias not a delivery
    assert data["totals"]["forwarded"] == 1


def test_deferred_twice_then_expired_is_one_expired_message_with_its_timeline() -> None:
    data = summary(FIX / "postfix_cases.log")
    tl = next(t for t in data["timelines"] if t["queue_id"] == "4Y8B9C0D1E")
    assert [e["status"] for e in tl["events"]] == ["deferred", "deferred", "expired"]
    assert tl["outcome"] == "expired"
    assert data["totals"]["expired"] == 1 and data["message_outcomes"]["expired"] == 1
    slow = provider(data, "slow.example")
    assert (slow["deferred"], slow["expired"]) == (2, 1)
    assert slow["reasons"][0]["reason"] == "networkerror"


# -- per provider ---------------------------------------------------------------------------
def test_providers_and_reasons_follow_each_reply() -> None:
    data = summary(CAPTURE)
    google, yahoo, microsoft = (provider(data, n) for n in ("google", "yahoo", "microsoft"))
    assert (google["delivered"], google["bounced"]) == (1, 3)
    assert {r["reason"] for r in google["reasons"]} >= {"mailboxfull", "userunknown"}
    assert yahoo["reasons"][0]["reason"] == "badreputation" and "[TSS04]" in yahoo["reasons"][0]["example"]
    assert microsoft["bounced"] == 3
    assert provider(data, "kddi")["reasons"][0]["reason"] == "blocked"
    for p in data["providers"]:
        for r in p["reasons"]:
            assert r["count"] > 0 and isinstance(r["example"], str)


def test_reasons_link_the_existing_remediation() -> None:
    import knowledge

    data = summary(CAPTURE)
    for p in data["providers"]:
        for r in p["reasons"]:
            for rid in r["remediation"]:
                assert knowledge.find_remediation(rid) is not None, rid


def test_exim_main_log_outcomes_per_provider() -> None:
    data = summary(FIX / "exim_mainlog")
    t = data["totals"]
    assert (t["delivered"], t["deferrals"], t["deferred"], t["bounced"], t["expired"], t["rejected"]) == (3, 2, 1, 1, 1, 1)
    assert provider(data, "google")["delivered"] == 2
    assert provider(data, "yahoo")["reasons"][0]["reason"] == "userunknown"
    ms = provider(data, "microsoft")
    assert (ms["deferred"], ms["expired"]) == (2, 1)
    assert data["messages"] == 4


def test_sendmail_outcomes_and_rejects() -> None:
    data = summary(FIX / "sendmail_maillog")
    t = data["totals"]
    assert (t["delivered"], t["deferred"], t["bounced"], t["rejected"]) == (1, 1, 1, 1)
    assert provider(data, "docomo")["reasons"][0]["reason"] == "userunknown"
    assert provider(data, "microsoft")["deferred"] == 1


# -- findings ------------------------------------------------------------------------------
def test_gmail_refusing_ipv6_while_ipv4_delivers_is_called_out() -> None:
    data = summary(FIX / "postfix_cases.log")
    f = next(f for f in data["findings"] if f["code"] == "logs.ipv6_refused")
    assert f["severity"] == "critical" and f["evidence"]["provider"] == "google"
    assert f["evidence"]["ip"] == "2001:db8:1302:3134::25"
    assert "postfix.ipv4_only_smtp" in f["remediation"]
    assert provider(data, "google")["ipv6"] == {"delivered": 0, "failed": 1}
    assert provider(data, "google")["ipv4"] == {"delivered": 2, "failed": 0}


def test_microsoft_consumer_deliveries_get_one_accepted_not_delivered_note() -> None:
    data = summary(FIX / "postfix_cases.log", CAPTURE)
    notes = [f for f in data["findings"] if f["code"] == "logs.microsoft_accepted"]
    assert len(notes) == 1
    assert "SNDS" in notes[0]["detail"] and "provider.microsoft.snds_jmrp" in notes[0]["remediation"]
    assert not [f for f in summary(FIX / "exim_mainlog")["findings"] if f["code"] == "logs.microsoft_accepted"]


def test_sender_side_problems_tls_dns_and_timeouts_to_one_mx() -> None:
    data = summary(FIX / "postfix_cases.log")
    by = {f["code"]: f for f in data["findings"]}
    assert by["logs.tls_failure"]["evidence"]["target"] == "tlsbroken.example"
    assert by["logs.host_not_found"]["evidence"]["target"] == "nosuch-domain.example"
    cf = by["logs.connect_failure"]["evidence"]
    assert (cf["host"], cf["ip"], cf["count"]) == ("mx1.slow.example", "192.0.2.80", 3)
    ips = {f["evidence"]["ip"] for f in data["findings"] if f["code"] == "logs.sender_ip"}
    assert "2001:db8:1302:3134::25" in ips  # what Gmail saw: `mailcheck ip` can follow it


def _rate_limit_day(path: Path, dead_addresses: bool = False) -> None:
    lines = []
    n = 0
    for hour in range(8, 13):
        for i in range(20):
            n += 1
            qid = f"6{hour:02d}{i:02d}ABCDE"
            ts = f"Dec  4 {hour:02d}:{i * 2:02d}:00"
            limited = hour >= 11 and i % 2 == 0
            if dead_addresses and i % 10 < 3:  # 30% of every hour: addresses that no longer exist
                status = ("dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.4.27] said: 550-5.1.1 "
                          "The email account that you tried to reach does not exist. a1si3 - gsmtp (in reply to RCPT TO "
                          "command))")
            elif limited:
                status = ("dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.4.27] said: 421-4.7.28 "
                          "Gmail has detected an unusual rate of unsolicited mail. To protect our users from spam, mail "
                          "has been temporarily rate limited. 421 4.7.28  https://support.google.com/mail/?p="
                          "UnsolicitedRateLimitError a1si1 - gsmtp (in reply to end of DATA command))")
            else:
                status = "dsn=2.0.0, status=sent (250 2.0.0 OK  1733302802 a1si2 - gsmtp)"
            lines.append(f"{ts} mta postfix/smtp[900]: {qid}: to=<u{n}@gmail.com>, relay=gmail-smtp-in.l.google.com"
                         f"[142.250.4.27]:25, delay=0.9, delays=0.1/0/0.4/0.4, {status}\n")
            lines.append(f"{ts} mta postfix/qmgr[901]: {qid}: removed\n")
    path.write_text("".join(lines))


def test_a_provider_that_starts_rate_limiting_is_called_out_with_when(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    _rate_limit_day(log)
    data = summary(log)
    jump = next(f for f in data["findings"] if f["code"] == "logs.rate_jump")
    ev = jump["evidence"]
    assert ev["provider"] == "google" and ev["when"].endswith("T11:00:00")
    assert ev["rate"] == "50%" and ev["value"] == "0%"
    assert "11:00" in jump["title"]
    hours = [h["hour"][11:13] for h in data["hours"]]
    assert hours == ["08", "09", "10", "11", "12"]


def test_a_steady_share_of_dead_addresses_does_not_hide_the_start_of_rate_limiting(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    _rate_limit_day(log, dead_addresses=True)
    jump = next(f for f in summary(log)["findings"] if f["code"] == "logs.rate_jump")
    assert jump["evidence"]["when"].endswith("T11:00:00") and jump["evidence"]["value"] == "0%"


# -- formats, rotation, time --------------------------------------------------------------
def test_rotated_set_given_in_any_order_reads_as_one_log(tmp_path: Path) -> None:
    lines = (FIX / "postfix_cases.log").read_text().splitlines(keepends=True)
    (tmp_path / "mail.log.2.gz").write_bytes(gzip.compress("".join(lines[:20]).encode()))
    (tmp_path / "mail.log.1").write_text("".join(lines[20:40]))
    (tmp_path / "mail.log").write_text("".join(lines[40:]))
    whole = summary(FIX / "postfix_cases.log")
    rotated = summary(tmp_path / "mail.log", tmp_path / "mail.log.2.gz", tmp_path / "mail.log.1")
    for key in ("totals", "messages", "period", "message_outcomes"):
        assert rotated[key] == whole[key], key


def test_syslog_year_is_inferred_and_carried_across_new_year(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    shutil.copy(FIX / "newyear.log", log)
    jan2 = time.mktime((2027, 1, 2, 12, 0, 0, 0, 0, -1))
    os.utime(log, (jan2, jan2))
    data = summary(log)
    assert data["period"]["start"].startswith("2026-12-31T23:59")
    assert data["period"]["end"].startswith("2027-01-01T00:00")
    assert data["totals"]["delivered"] == 2


@pytest.mark.parametrize("name", ["rfc5424.log", "shortiso.log", "postfix_cases_rfc3339.log"])
def test_rfc5424_rfc3339_and_journald_short_iso_timestamps_are_read(name: str) -> None:
    data = summary(FIX / name)
    assert data["period"]["start"] is not None and data["totals"]["delivered"] >= 1
    assert data["period"]["start"].startswith("2026-12-0")
    assert not data["errors"]


def test_since_and_until_keep_only_that_window() -> None:
    from handlers.logs import parse_when

    data = summary(FIX / "postfix_cases.log", since=parse_when("2026-12-04 09:04"), until=parse_when("2026-12-04 09:30"))
    assert data["period"]["start"] >= "2026-12-04T09:04" and data["period"]["end"] <= "2026-12-04T09:30"
    assert data["totals"]["delivered"] == 3  # 09:05 the DSN to the sender, 09:06 gmail, 09:12 the content filter
    assert data["totals"]["bounced"] == 2  # 09:05 gmail over IPv6, 09:12 mailbox full
    with pytest.raises(ValueError):
        parse_when("yesterday-ish")


# -- privacy, JSON, CLI --------------------------------------------------------------------
def test_json_has_spec_shape_and_addresses_are_masked_by_default() -> None:
    p = cli("--json", str(FIX / "postfix_cases.log"))
    assert p.returncode == 1, p.stderr  # the IPv6 refusal is critical
    data = json.loads(p.stdout)
    assert data["kind"] == "logs"
    assert set(data) >= {"period", "lines", "messages", "totals", "providers", "findings"}
    assert set(data["totals"]) >= {"delivered", "deferred", "bounced", "expired", "rejected"}
    for p_ in data["providers"]:
        assert set(p_) >= {"provider", "delivered", "deferred", "bounced", "expired", "reasons"}
    text = p.stdout.decode()
    assert "carol@gmail.com" not in text and "***@gmail.com" in text
    shown = cli("--json", "--show-addresses", str(FIX / "postfix_cases.log"))
    assert "carol@gmail.com" in shown.stdout.decode()


def test_terminal_summary_in_japanese() -> None:
    p = cli("--lang", "ja", str(CAPTURE))
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    assert "配送 26件" in out and "google：" in out and "検出事項" in out


def test_stdin_is_read_with_dash() -> None:
    p = cli("--json", "-", stdin=(FIX / "sendmail_maillog").read_bytes())
    assert json.loads(p.stdout)["totals"]["delivered"] == 1


# -- bad input ------------------------------------------------------------------------------
def test_truncated_gzip_binary_junk_and_a_10_mb_line_each_get_one_message_and_the_rest_is_read(tmp_path: Path) -> None:
    good = (FIX / "postfix_cases.log").read_bytes()
    whole = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    half = good[: len(good) // 2]
    (tmp_path / "junk.log").write_bytes(half + b"\x00\x01\x02\xff" * 300 + b"\n" + os.urandom(5000).replace(b"\n", b"")
                                       + b"\n" + good[len(good) // 2 :])
    (tmp_path / "long.log").write_bytes(half + b"Dec  4 09:07:00 mta postfix/smtp[1]: X" + b"A" * (10 << 20) + b"\n"
                                        + good[len(good) // 2 :])
    p = cli("--json", str(tmp_path / "cut.gz"))
    data = json.loads(p.stdout)
    assert len(data["errors"]) == 1 and "cut.gz" in data["errors"][0] and "ends early" in data["errors"][0]
    assert data["totals"]["delivered"] >= 1
    for name in ("junk.log", "long.log"):
        data = json.loads(cli("--json", str(tmp_path / name)).stdout)
        assert len(data["errors"]) == 1, data["errors"]
        assert data["totals"] == summary(FIX / "postfix_cases.log")["totals"], name
    p = cli(str(tmp_path / "long.log"))
    assert b"Traceback" not in p.stderr and b"longer than" in p.stderr


def test_a_missing_file_or_a_bad_time_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    p = cli(str(tmp_path / "nope.log"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and b"Traceback" not in p.stderr
    p = cli("--since", "last tuesday", str(FIX / "newyear.log"))
    assert p.returncode == 2 and b"--since" in p.stderr


def test_a_file_that_is_not_a_mail_log_says_so(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(os.urandom(20000))
    p = cli(str(tmp_path / "x.bin"))
    assert b"Traceback" not in p.stderr
    assert b"No mail log lines" in p.stdout


def test_lines_counts_every_line_of_every_file(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    generate(log, 1 << 20, seed=3)
    expected = log.read_bytes().count(b"\n") + CAPTURE.read_bytes().count(b"\n")
    assert summary(log, CAPTURE)["lines"] == expected


def test_open_messages_are_capped_so_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from handlers.logs import tally

    monkeypatch.setattr(tally, "MAX_OPEN", 50)
    log = tmp_path / "mail.log"
    # 500 messages whose "removed" line is missing (a cut log): the oldest are closed as the table fills.
    log.write_text("".join(
        f"Dec  4 10:{i // 60:02d}:{i % 60:02d} mta postfix/smtp[9]: 7{i:09d}: to=<u{i}@gmail.com>, "
        f"relay=gmail-smtp-in.l.google.com[142.250.4.27]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, "
        f"status=sent (250 2.0.0 OK  1733302802 a1si2 - gsmtp)\n"
        for i in range(500)
    ))
    t = tally.Tally()
    peak = 0
    for i in range(500):
        t.message(f"Q{i}", 0.0)
        peak = max(peak, len(t.open))
    assert peak == 50
    data = summary(log)
    assert data["messages"] == 500 and data["message_outcomes"] == {"delivered": 500}
