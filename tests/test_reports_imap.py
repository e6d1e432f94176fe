"""The `reports` worker against a real Dovecot: every report in the mailbox is stored
once, a message is moved only after its reports are stored, other mail stays put."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.reports_imap import (
    NO_REPORT_KEYWORD,
    ImapConfigError,
    ImapFatal,
    ImapTransient,
    ReportsWorker,
    parse_imap_url,
)
from bot.storage import Store
from bot.storage.reports import OPERATOR_SCOPE, ReportStore
from tests import test_storage_backends as backends
from tests.support import dovecot as dovecot_support
from tests.support.dovecot import Dovecot

dovecot = dovecot_support.dovecot  # fixture: a real Dovecot on a loopback port
dovecot_tls = dovecot_support.dovecot_tls  # the same with IMAPS and STARTTLS (a self-signed certificate)
db_url = backends.db_url  # fixtures: SQLite and PostgreSQL
ROOT = Path(__file__).resolve().parents[1]


def aggregate_xml(report_id: str, org: str = "google.com", domain: str = "example.com",
                  ip: str = "203.0.113.7", count: int = 3, dkim: str = "pass",
                  begin: int = 1764460800, end: int = 1764547199) -> bytes:
    # RFC 7489 appendix C shape.
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>{org}</org_name>
    <email>noreply-dmarc-support@{org}</email>
    <report_id>{report_id}</report_id>
    <date_range><begin>{begin}</begin><end>{end}</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>{ip}</source_ip><count>{count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results>
      <dkim><domain>{domain}</domain><selector>s1</selector><result>{dkim}</result></dkim>
      <spf><domain>{domain}</domain><result>fail</result></spf>
    </auth_results>
  </record>
</feedback>
""".encode()


def report_mail(report_id: str, *, payload: bytes | None = None, org: str = "google.com") -> bytes:
    """A report email the way Google sends one: the XML gzipped as an attachment."""
    msg = EmailMessage()
    msg["From"] = f"noreply-dmarc-support@{org}"
    msg["To"] = "dmarc-reports@example.com"
    msg["Subject"] = f"Report domain: example.com Submitter: {org} Report-ID: {report_id}"
    msg.set_content("This is an aggregate report from " + org)
    data = payload if payload is not None else gzip.compress(aggregate_xml(report_id, org=org))
    msg.add_attachment(data, maintype="application", subtype="gzip",
                       filename=f"{org}!example.com!1764460800!1764547199.xml.gz")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def plain_mail(subject: str = "Lunch?") -> bytes:
    return (f"From: colleague@example.com\r\nTo: dmarc-reports@example.com\r\nSubject: {subject}\r\n"
            "\r\nAre you free at noon?\r\n").encode()


async def run_worker(dc: Dovecot, db_url: str, folder: str = "INBOX") -> Any:
    store = await Store.open(db_url)
    try:
        worker = ReportsWorker(parse_imap_url(dc.url(folder)), ReportStore.of(store))
        return await worker.run_once()
    finally:
        await store.close()


async def stored(db_url: str) -> list[str]:
    store = await Store.open(db_url)
    try:
        return sorted(r.report_id for r in await ReportStore.of(store).find(OPERATOR_SCOPE))
    finally:
        await store.close()


def uids_and_flags(dc: Dovecot, folder: str) -> list[set[str]]:
    return [flags for _uid, flags, _raw in dc.messages(folder)]


async def test_each_report_in_the_mailbox_is_stored_once_across_restarts(dovecot: Dovecot, db_url: str) -> None:
    db = db_url
    dovecot.append(report_mail("g-1"))
    dovecot.append(report_mail("g-2"))
    dovecot.append(report_mail("g-1"))  # the reporter sent the same report twice
    first = await run_worker(dovecot, db)
    assert (first.messages, first.reports_new, first.reports_seen, first.moved) == (3, 2, 1, 3)
    assert await stored(db) == ["g-1", "g-2"]
    assert dovecot.messages("INBOX") == []
    assert all("\\Seen" in f for f in uids_and_flags(dovecot, "INBOX.processed"))
    assert len(dovecot.messages("INBOX.processed")) == 3

    dovecot.append(report_mail("g-3"))  # arrives while the worker is down
    second = await run_worker(dovecot, db)  # a restart
    assert (second.messages, second.reports_new) == (1, 1)
    assert await stored(db) == ["g-1", "g-2", "g-3"]


async def test_a_message_stays_unread_in_the_folder_until_its_reports_are_stored(dovecot: Dovecot,
                                                                                  db_url: str) -> None:
    db = db_url
    store = await Store.open(db)
    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE reports RENAME TO reports_away"))  # the database refuses writes
    dovecot.append(report_mail("g-1"))
    worker = ReportsWorker(parse_imap_url(dovecot.url()), ReportStore.of(store))
    with pytest.raises(Exception, match="reports"):
        await worker.run_once()
    [(_uid, flags, _raw)] = dovecot.messages("INBOX")
    assert "\\Seen" not in flags and NO_REPORT_KEYWORD not in flags
    assert dovecot.messages("INBOX.processed") == []

    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE reports_away RENAME TO reports"))  # the database is back
    await store.close()
    again = await run_worker(dovecot, db)
    assert (again.reports_new, again.moved) == (1, 1)
    assert await stored(db) == ["g-1"]


async def test_a_crash_after_storing_but_before_moving_counts_the_report_once(dovecot: Dovecot,
                                                                              db_url: str) -> None:
    db = db_url
    from handlers.reports.api import parse_blob

    raw = report_mail("g-1")
    store = await Store.open(db)
    try:  # what the worker had done when it died: the reports stored, the message not yet moved
        assert await ReportStore.of(store).add(OPERATOR_SCOPE, parse_blob("m.eml", raw).reports,
                                               source="imap") == [True]
    finally:
        await store.close()
    dovecot.append(raw)
    after = await run_worker(dovecot, db)
    assert (after.reports_new, after.reports_seen, after.moved) == (0, 1, 1)
    assert await stored(db) == ["g-1"]


async def test_a_message_the_database_keeps_refusing_does_not_block_the_others(dovecot: Dovecot,
                                                                              tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    store = await Store.open(db)
    async with store.engine.begin() as conn:  # the database refuses this one report, and only it
        await conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON reports WHEN NEW.report_id = 'poison' "
                                "BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"))
    dovecot.append(report_mail("poison"))
    dovecot.append(report_mail("fine"))
    worker = ReportsWorker(parse_imap_url(dovecot.url()), ReportStore.of(store))
    try:
        for _ in range(2):  # retried: it might be a passing problem
            with pytest.raises(Exception, match="refused by the database"):
                await worker.run_once()
        last = await worker.run_once()
        assert (last.no_report, last.reports_new, last.moved) == (1, 1, 1)
    finally:
        await store.close()
    assert await stored(db) == ["fine"]
    [(_uid, flags, raw)] = dovecot.messages("INBOX")
    assert b"Report-ID: poison" in raw and NO_REPORT_KEYWORD in flags and "\\Seen" not in flags


async def test_a_mail_without_a_report_stays_in_the_folder_unread(dovecot: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    dovecot.append(plain_mail())
    first = await run_worker(dovecot, db)
    assert (first.messages, first.no_report, first.moved) == (1, 1, 0)
    [(_uid, flags, raw)] = dovecot.messages("INBOX")
    assert "\\Seen" not in flags  # a person reading the mailbox still sees it as new
    assert NO_REPORT_KEYWORD in flags and b"Are you free at noon?" in raw
    again = await run_worker(dovecot, db)
    assert again.messages == 0  # not read again on every pass
    assert await stored(db) == []


async def test_the_worker_survives_a_broken_report_mail(dovecot: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    dovecot.append(report_mail("broken", payload=b"\x1f\x8b\x08\x00 not really gzip"))
    dovecot.append(report_mail("zip-of-nothing", payload=b"PK\x03\x04" + b"\x00" * 40))
    dovecot.append(report_mail("g-ok"))
    stats = await run_worker(dovecot, db)
    assert (stats.messages, stats.no_report, stats.moved) == (3, 2, 1)
    assert await stored(db) == ["g-ok"]
    assert len(dovecot.messages("INBOX")) == 2  # the broken ones are left for a person


async def test_a_wrong_password_is_one_line_without_the_password(dovecot: Dovecot, tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path}/mc.db")
    try:
        target = parse_imap_url(dovecot.url(password="wrong-password-123"))
        with pytest.raises(ImapFatal) as err:
            await ReportsWorker(target, ReportStore.of(store)).run_once()
        assert "rejected" in str(err.value) and "\n" not in str(err.value)
        assert "wrong-password-123" not in str(err.value)
        missing = parse_imap_url(dovecot.url("NoSuchFolder"))
        with pytest.raises(ImapFatal, match="NoSuchFolder"):
            await ReportsWorker(missing, ReportStore.of(store)).run_once()
    finally:
        await store.close()


async def test_an_unreachable_server_is_retried_not_fatal(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = await Store.open(f"sqlite:///{tmp_path}/mc.db")
    try:
        target = parse_imap_url(f"imap://u:secret-pass@127.0.0.1:{port}/INBOX")
        with pytest.raises(ImapTransient, match=f"cannot reach IMAP server 127.0.0.1:{port}"):
            await ReportsWorker(target, ReportStore.of(store)).run_once()
    finally:
        await store.close()


@pytest.mark.parametrize(("url", "says"), [
    ("", "is not set"),
    ("https://u:p@imap.example.com/INBOX", "must start with imaps:// or imap://"),
    ("imaps://imap.example.com/INBOX", "needs a user and a password"),
    ("imaps://u:p@/INBOX", "has no host"),
    ("imaps://u:p@imap.example.com:99999/INBOX", "not a valid URL"),
])
def test_a_bad_mailbox_url_is_one_clear_line(url: str, says: str) -> None:
    with pytest.raises(ImapConfigError, match=says) as err:
        parse_imap_url(url)
    assert "\n" not in str(err.value)


def test_a_mailbox_url_reads_port_folder_and_escaped_credentials() -> None:
    t = parse_imap_url("imaps://dmarc%40example.com:p%2Fss@imap.example.com/Reports%2FDMARC")
    assert (t.user, t.password, t.host, t.port, t.folder) == ("dmarc@example.com", "p/ss", "imap.example.com", 993,
                                                              "Reports/DMARC")
    assert "p/ss" not in repr(t) and "p/ss" not in t.redacted()
    assert parse_imap_url("imap://u:p@127.0.0.1:1143").folder == "INBOX"


async def test_imaps_with_a_trusted_certificate_reads_the_mailbox(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    dovecot_tls.append(report_mail("tls-1"))
    store = await Store.open(db)
    try:
        target = parse_imap_url(dovecot_tls.url(scheme="imaps"), str(dovecot_tls.ca_file))
        stats = await ReportsWorker(target, ReportStore.of(store)).run_once()
        assert (stats.reports_new, stats.moved) == (1, 1)
    finally:
        await store.close()
    assert await stored(db) == ["tls-1"]


async def test_an_untrusted_certificate_stops_the_worker_with_one_line(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path}/mc.db")
    try:
        for scheme in ("imaps", "imap"):  # imap:// takes the STARTTLS the server offers, and checks it too
            target = parse_imap_url(dovecot_tls.url(scheme=scheme))
            with pytest.raises(ImapFatal, match="is not trusted") as err:
                await ReportsWorker(target, ReportStore.of(store)).run_once()
            assert "MAILCHECK_REPORTS_IMAP_CA" in str(err.value) and "\n" not in str(err.value)
    finally:
        await store.close()
    assert dovecot_tls.messages("INBOX") == []


async def test_imap_upgrades_to_starttls_when_the_server_offers_it(dovecot_tls: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    dovecot_tls.append(report_mail("st-1"))
    store = await Store.open(db)
    try:
        target = parse_imap_url(dovecot_tls.url(scheme="imap"), str(dovecot_tls.ca_file))
        assert (await ReportsWorker(target, ReportStore.of(store)).run_once()).moved == 1
    finally:
        await store.close()
    logins = [ln for ln in dovecot_tls.log().splitlines() if "Login: user=<reports>" in ln]
    assert logins and ", TLS," in logins[-1]  # the password went over TLS


def test_a_missing_ca_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ImapConfigError, match=r"MAILCHECK_REPORTS_IMAP_CA=.* is not a readable file"):
        parse_imap_url("imaps://u:p@imap.example.com/INBOX", str(tmp_path / "nope.pem"))


def test_the_reports_process_picks_up_new_mail_and_stops_on_sigterm(dovecot: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    env = {**os.environ, "MAILCHECK_REPORTS_IMAP": dovecot.url(), "DATABASE_URL": db, "PYTHONPATH": str(ROOT),
           "LOG_LEVEL": "INFO"}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--mode", "reports"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "reading reports" in log_path.read_text(errors="replace"), proc)
        assert "(IDLE)" in log_path.read_text()
        dovecot.append(report_mail("live-1"))  # delivered while the worker idles
        wait_until(lambda: len(dovecot.messages("INBOX.processed")) == 1, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert asyncio.run(stored(db)) == ["live-1"]
    out = log_path.read_text(errors="replace")
    assert dovecot.password not in out
    assert "Traceback" not in out


def wait_until(cond: Any, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode})")
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_two_workers_on_one_mailbox_still_store_each_report_once(dovecot: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    for i in range(6):
        dovecot.append(report_mail(f"both-{i}"))
    store = await Store.open(db)
    try:
        target = parse_imap_url(dovecot.url())
        workers = [ReportsWorker(target, ReportStore.of(store)) for _ in range(2)]
        results = await asyncio.gather(*(w.run_once() for w in workers), return_exceptions=True)
        # One of them may find a message gone under it (the other moved it): that is a retry, not a loss.
        assert all(isinstance(r, ImapTransient) or r.moved >= 0 for r in results), results
        if any(isinstance(r, ImapTransient) for r in results):
            await workers[0].run_once()
    finally:
        await store.close()
    assert await stored(db) == [f"both-{i}" for i in range(6)]
    assert dovecot.messages("INBOX") == []
    # Both may have moved the same message before seeing the other's expunge (IMAP sessions
    # see another's expunge only at their next sync): a second copy, never a second count.
    moved = {re.search(rb"Report-ID: (\S+)", raw).group(1) for _u, _f, raw in dovecot.messages("INBOX.processed")}
    assert moved == {f"both-{i}".encode() for i in range(6)}


def run_once_process(url: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILCHECK_REPORTS_IMAP": url, "DATABASE_URL": db, "PYTHONPATH": str(ROOT)}
    env.pop("LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "bot", "serve", "--mode", "reports", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_once_reads_the_mailbox_for_cron_and_says_what_it_did(dovecot: Dovecot, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/mc.db"
    dovecot.append(report_mail("cron-1"))
    dovecot.append(plain_mail())
    done = run_once_process(dovecot.url(), db)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == ("mailcheck reports: 2 message(s) read, 1 new report(s), "
                                                    "0 already stored, 1 without a report")
    assert asyncio.run(stored(db)) == ["cron-1"]


def test_once_with_a_wrong_password_or_no_server_is_one_line(dovecot: Dovecot, tmp_path: Path) -> None:
    import socket

    db = f"sqlite:///{tmp_path}/mc.db"
    bad = run_once_process(dovecot.url(password="not-the-password-42"), db)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "was rejected" in bad.stderr
    assert "not-the-password-42" not in bad.stderr + bad.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = run_once_process(f"imap://u:secret-pass-99@127.0.0.1:{port}/INBOX", db)
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "cannot reach IMAP server" in gone.stderr
    assert "secret-pass-99" not in gone.stderr
    worse = run_once_process("imap://nobody@127.0.0.1/INBOX", db)
    assert worse.returncode == 2 and "needs a user and a password" in worse.stderr and worse.stderr.count("\n") == 1
