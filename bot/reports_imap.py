"""The `reports` worker: reads receiver reports from an IMAP mailbox and stores them.

    MAILCHECK_REPORTS_IMAP=imaps://user:password@imap.example.com/INBOX mailcheck serve --mode reports

`imaps://` is IMAP over TLS (port 993, certificate verified); `imap://` is plain
IMAP (port 143) upgraded with STARTTLS when the server offers it — plain text
only to a loopback host (a local Dovecot, the tests), never a password in clear
over a network. The folder defaults to INBOX; user and password are
percent-decoded (RFC 3986 section 3.2.1).

Each message in the folder is fetched whole (an RFC 5322 message is a valid input
to `parse_blob`), its reports are stored (bot/storage/reports.py, source `imap`)
and only THEN is it marked \\Seen and moved to `FOLDER.processed` (MOVE, RFC 6851;
else COPY + \\Deleted + UID EXPUNGE). A crash between storing and moving leaves the
message where it was; the next pass stores its reports again, which the store's
de-duplication makes a no-op, then moves it. So every report is stored once, across
restarts. A message with no report in it (or one that cannot be read) stays in
the folder, untouched but for the keyword `$MailcheckNoReport`
(RFC 3501 section 2.3.2) so it is not read again; a person can still see it there.
The same happens to a message whose reports the database refused MAX_STORE_TRIES
times (a refusal, not the database being away), so it cannot block the others.

New mail is awaited with IDLE (RFC 2177) when the server advertises it, re-issued
every few minutes (the RFC asks clients to restart it within 29 minutes), else the
folder is polled. Lost connections are retried with exponential back-off; a
rejected login or a missing folder stops the worker with one line. SIGTERM stops it
within a second or two (no IMAP call is waited on longer than that).

Why stdlib imaplib in a thread rather than aioimaplib: no new dependency, and each
IMAP call is short; the blocking calls run in a worker thread (asyncio.to_thread)
and IDLE waits in slices of half a second so a stop request is seen promptly.
The password is registered with bot.redact, so no log line can carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ipaddress
import logging
import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.storage.reports import OPERATOR_SCOPE, ReportStore

log = logging.getLogger("mailcheck.reports")

NO_REPORT_KEYWORD = "$MailcheckNoReport"
PROCESSED_SUFFIX = "processed"
MAX_MESSAGE_BYTES = 40 * 1024 * 1024  # a zipped aggregate report mail is KBs..MBs; far beyond: not a report
IDLE_RESTART_S = 240.0
POLL_S = 60.0
BACKOFF_MAX_S = 300.0
IO_TIMEOUT_S = 60.0
MAX_STORE_TRIES = 3  # a message whose reports the database refuses this often is left for a person


class ImapConfigError(ValueError):
    """MAILCHECK_REPORTS_IMAP is unusable (one line)."""


class ImapFatal(Exception):
    """Retrying will not help: login rejected, folder missing (one line)."""


class ImapTransient(Exception):
    """The server is unreachable or dropped the connection: retry later (one line)."""


@dataclass(frozen=True)
class ImapTarget:
    scheme: str  # imap | imaps
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str
    ca_file: str | None = None  # PEM of the CA to trust instead of the system's (MAILCHECK_REPORTS_IMAP_CA)

    def redacted(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host.lower() == "localhost"


def parse_imap_url(url: str | None, ca_file: str | None = None) -> ImapTarget:
    """`imaps://user:pass@host[:port]/FOLDER` -> ImapTarget; ImapConfigError says what is wrong
    (never echoing the password)."""
    text = (url or "").strip()
    if not text:
        raise ImapConfigError("MAILCHECK_REPORTS_IMAP is not set (imaps://user:password@host/INBOX)")
    try:
        parts = urlsplit(text)
        port_given = parts.port
    except ValueError:
        raise ImapConfigError("MAILCHECK_REPORTS_IMAP is not a valid URL (imaps://user:password@host[:port]/FOLDER)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("imap", "imaps"):
        raise ImapConfigError(f"MAILCHECK_REPORTS_IMAP must start with imaps:// or imap://, not {scheme or 'nothing'}://")
    host = parts.hostname or ""
    if not host:
        raise ImapConfigError("MAILCHECK_REPORTS_IMAP has no host (imaps://user:password@host/INBOX)")
    if not parts.username or parts.password is None:
        raise ImapConfigError("MAILCHECK_REPORTS_IMAP needs a user and a password (imaps://user:password@host/INBOX)")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if ca_file and not os.path.isfile(ca_file):
        raise ImapConfigError(f"MAILCHECK_REPORTS_IMAP_CA={ca_file[:200]} is not a readable file")
    return ImapTarget(scheme, host, port_given or (993 if scheme == "imaps" else 143),
                      unquote(parts.username), unquote(parts.password), folder, ca_file or None)


@dataclass
class PassStats:
    messages: int = 0  # looked at
    reports_new: int = 0
    reports_seen: int = 0  # already stored (by mail before a crash, or uploaded)
    moved: int = 0
    no_report: int = 0


ParseFn = Callable[[str, bytes], Any]


def _default_parse(name: str, data: bytes) -> Any:
    from handlers.reports.api import parse_blob

    return parse_blob(name, data)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, imaplib.IMAP4.error) and text.startswith("b'"):
        text = text[2:-1]
    return " ".join(text.split())[:300]


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Session:
    """One logged-in IMAP connection (blocking; used from a worker thread)."""

    def __init__(self, target: ImapTarget) -> None:
        self.target = target
        self.conn: imaplib.IMAP4 | None = None
        self.caps: set[str] = set()
        self.sep = "."
        self.keywords_ok = True

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.target.ca_file)

    def _untrusted(self, exc: BaseException) -> ImapFatal:
        t = self.target
        why = str(getattr(exc, "verify_message", "") or "") or _one_line(exc)
        return ImapFatal(f"the certificate of IMAP server {t.host}:{t.port} is not trusted "
                         f"({' '.join(why.split())[:200]}); "
                         "set MAILCHECK_REPORTS_IMAP_CA to the file of its CA if it has a private one")

    def connect(self) -> None:
        t = self.target
        try:
            if t.scheme == "imaps":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(t.host, t.port, ssl_context=self._tls(),
                                                        timeout=IO_TIMEOUT_S)
            else:
                conn = imaplib.IMAP4(t.host, t.port, timeout=IO_TIMEOUT_S)
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapTransient(f"cannot reach IMAP server {t.host}:{t.port}: {_one_line(exc)}") from None
        self.conn = conn
        try:
            if t.scheme == "imap":
                if "STARTTLS" in conn.capabilities:
                    try:
                        conn.starttls(self._tls())
                    except ssl.SSLCertVerificationError as exc:
                        raise self._untrusted(exc) from None
                elif not t.loopback:
                    raise ImapFatal(f"IMAP server {t.host} offers no STARTTLS; use imaps:// "
                                    "(a password is never sent in clear beyond this machine)")
            try:
                conn.login(t.user, t.password)
            except imaplib.IMAP4.error as exc:
                raise ImapFatal(f"IMAP login to {t.host} as {t.user} was rejected: {_one_line(exc)}") from None
            typ, data = conn.capability()
            if typ == "OK" and data and data[0]:
                self.caps = {c.upper() for c in data[0].decode("ascii", "replace").split()}
            self.sep = self._separator()
        except ImapFatal:
            self.close()
            raise
        except (OSError, imaplib.IMAP4.abort, ssl.SSLError) as exc:
            self.close()
            raise ImapTransient(f"IMAP connection to {t.host}:{t.port} failed: {_one_line(exc)}") from None

    def _separator(self) -> str:
        assert self.conn is not None
        typ, data = self.conn.list('""', _quote(self.target.folder))
        if typ == "OK":
            for line in data or []:
                if isinstance(line, bytes):
                    m = re.match(rb'\([^)]*\) (?:"((?:\\.|[^"])*)"|NIL)', line)
                    if m and m.group(1):
                        return m.group(1).decode("ascii", "replace").replace("\\", "") or "."
        return "."

    @property
    def processed(self) -> str:
        return f"{self.target.folder}{self.sep}{PROCESSED_SUFFIX}"

    def select(self) -> None:
        assert self.conn is not None
        typ, data = self.conn.select(_quote(self.target.folder))
        if typ != "OK":
            raise ImapFatal(f"IMAP folder {self.target.folder!r} cannot be opened: {_one_line(Exception(data))}")
        flags = self.conn.untagged_responses.get("PERMANENTFLAGS") or []
        joined = b" ".join(f for f in flags if isinstance(f, bytes))
        self.keywords_ok = not flags or b"\\*" in joined
        typ, _ = self.conn.create(_quote(self.processed))  # NO when it exists already: fine

    def pending(self) -> list[str]:
        """UIDs of the messages still to be read (neither moved nor marked no-report)."""
        assert self.conn is not None
        typ, data = self.conn.uid("SEARCH", "UNDELETED", "UNKEYWORD", NO_REPORT_KEYWORD)
        if typ != "OK":
            raise ImapTransient(f"IMAP SEARCH failed: {_one_line(Exception(data))}")
        return (data[0] or b"").decode("ascii", "replace").split() if data else []

    def fetch(self, uid: str) -> bytes | None:
        """The whole message, or None when it is gone or larger than MAX_MESSAGE_BYTES."""
        assert self.conn is not None
        typ, data = self.conn.uid("FETCH", uid, "(RFC822.SIZE)")
        m = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(d for d in data or [] if isinstance(d, bytes)))
        if typ != "OK" or m is None:
            return None
        if int(m.group(1)) > MAX_MESSAGE_BYTES:
            return b""
        typ, data = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
        for item in data or []:
            if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def mark_no_report(self, uid: str) -> None:
        assert self.conn is not None
        if self.keywords_ok:
            self.conn.uid("STORE", uid, "+FLAGS.SILENT", f"({NO_REPORT_KEYWORD})")

    def move_processed(self, uid: str) -> None:
        """Mark \\Seen and move to FOLDER.processed (after the reports are stored)."""
        assert self.conn is not None
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        if "MOVE" in self.caps:
            typ, data = self.conn.uid("MOVE", uid, _quote(self.processed))
            if typ != "OK":
                raise ImapTransient(f"IMAP MOVE failed: {_one_line(Exception(data))}")
            return
        typ, data = self.conn.uid("COPY", uid, _quote(self.processed))
        if typ != "OK":
            raise ImapTransient(f"IMAP COPY failed: {_one_line(Exception(data))}")
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self.caps:
            self.conn.uid("EXPUNGE", uid)
        else:
            self.conn.expunge()

    def idle(self, seconds: float, stop: threading.Event) -> bool:
        """RFC 2177 IDLE for up to `seconds`; True when the server reported new mail."""
        conn = self.conn
        assert conn is not None
        tag = conn._new_tag()  # type: ignore[attr-defined]
        conn.send(tag + b" IDLE\r\n")
        first = conn.readline()
        if not first.startswith(b"+"):
            conn.tagged_commands.pop(tag, None)  # type: ignore[attr-defined]
            raise ImapTransient(f"IMAP IDLE refused: {first[:200].decode('ascii', 'replace').strip()}")
        sock = conn.socket()
        end = time.monotonic() + seconds
        changed = False
        while not stop.is_set() and time.monotonic() < end and not changed:
            ready = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not ready:
                ready = bool(select.select([sock], [], [], 0.5)[0])
            if ready:
                line = conn.readline()
                if not line:
                    raise ImapTransient("IMAP server closed the connection during IDLE")
                changed = bool(re.match(rb"\* \d+ (EXISTS|RECENT)", line))
        conn.send(b"DONE\r\n")
        while True:
            line = conn.readline()
            if not line:
                raise ImapTransient("IMAP server closed the connection after IDLE")
            if line.startswith(tag):
                break
            if re.match(rb"\* \d+ (EXISTS|RECENT)", line):
                changed = True
        conn.tagged_commands.pop(tag, None)  # type: ignore[attr-defined]
        return changed

    def noop(self) -> None:
        if self.conn is not None:
            self.conn.noop()

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.logout()
        with contextlib.suppress(Exception):
            conn.shutdown()

    def abort(self) -> None:
        """From another thread: unblock a pending read (used on stop)."""
        conn = self.conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.sock.shutdown(socket.SHUT_RDWR)


class ReportsWorker:
    def __init__(
        self,
        target: ImapTarget,
        reports: ReportStore,
        *,
        team_id: str = OPERATOR_SCOPE,
        parse: ParseFn | None = None,
        poll_s: float = POLL_S,
        idle_s: float = IDLE_RESTART_S,
    ) -> None:
        from bot import redact

        redact.add_secret(target.password)
        self.target, self.reports, self.team_id = target, reports, team_id
        self.parse = parse or _default_parse
        self.poll_s, self.idle_s = poll_s, idle_s
        self._stop_thread = threading.Event()
        self._session: _Session | None = None
        self._refused: dict[str, int] = {}  # uid -> times the database refused its reports

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except (ImapFatal, ImapTransient):
            raise
        except (OSError, imaplib.IMAP4.abort, ssl.SSLError, EOFError) as exc:
            raise ImapTransient(f"IMAP connection to {self.target.host} lost: {_one_line(exc)}") from None
        except imaplib.IMAP4.error as exc:
            raise ImapTransient(f"IMAP command failed: {_one_line(exc)}") from None

    async def _open(self) -> _Session:
        session = _Session(self.target)
        self._session = session
        try:
            await self._call(session.connect)
            await self._call(session.select)
        except BaseException:
            await asyncio.to_thread(session.close)
            raise
        return session

    async def _process(self, session: _Session, uid: str, stats: PassStats) -> None:
        name = f"imap:{self.target.folder}/{uid}"
        data = await self._call(session.fetch, uid)
        if data is None:
            return  # expunged meanwhile
        stats.messages += 1
        found: list[Any] = []
        if not data:
            log.warning("%s: larger than %d MB, not read as a report", name, MAX_MESSAGE_BYTES // 2**20)
        else:
            try:
                parsed = await asyncio.to_thread(self.parse, name, data)
                found = list(parsed.reports)
                if not found:
                    errors = "; ".join(str(e) for e in getattr(parsed, "errors", [])[:2])
                    log.info("%s: no report in this message%s", name, f" ({errors[:200]})" if errors else "")
            except Exception as exc:  # a parser bug must not stop the mailbox
                log.warning("%s: cannot be read (%s: %s); left in the folder", name, type(exc).__name__,
                            _one_line(exc))
        if not found:
            stats.no_report += 1
            await self._call(session.mark_no_report, uid)
            return
        # Store first, then move: see the module docstring.
        try:
            added = await self.reports.add(self.team_id, found, source="imap")
        except Exception as exc:
            from bot.storage import is_transient_error

            if is_transient_error(exc):
                raise  # the database is away: retry the whole pass later
            # This message's reports are refused (not the database being away): after a few
            # tries leave it for a person rather than block every message after it.
            self._refused[uid] = self._refused.get(uid, 0) + 1
            if self._refused[uid] < MAX_STORE_TRIES:
                raise
            log.error("%s: its reports cannot be stored (%s: %s); left in the folder as %s", name,
                      type(exc).__name__, _one_line(exc), NO_REPORT_KEYWORD)
            stats.no_report += 1
            await self._call(session.mark_no_report, uid)
            return
        stats.reports_new += sum(added)
        stats.reports_seen += len(added) - sum(added)
        await self._call(session.move_processed, uid)
        stats.moved += 1
        log.info("%s: %d report(s), %d new; moved to %s", name, len(added), sum(added), session.processed)

    async def _drain(self, session: _Session, stats: PassStats) -> None:
        seen: set[str] = set()  # a server without keywords: read each message once per session
        while not self._stop_thread.is_set():
            todo = [u for u in await self._call(session.pending) if u not in seen]
            if not todo:
                return
            for uid in todo:
                if self._stop_thread.is_set():
                    return
                seen.add(uid)
                await self._process(session, uid, stats)

    async def run_once(self) -> PassStats:
        """Connect, read every pending message, disconnect (raises ImapFatal / ImapTransient)."""
        stats = PassStats()
        session = await self._open()
        try:
            await self._drain(session, stats)
        finally:
            await asyncio.to_thread(session.close)
        return stats

    async def run(self, stop: asyncio.Event) -> int:
        """Until `stop` is set: 0 when stopped, 2 on a fatal error (logged, one line)."""
        failures = 0
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                work = asyncio.ensure_future(self._session_loop(stop))
                done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if work not in done:  # stop requested: unblock the thread, wait briefly
                    self._stop_thread.set()
                    if self._session is not None:
                        self._session.abort()
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(work, 3)
                    break
                exc = work.exception()
                if isinstance(exc, ImapFatal):
                    log.error("reports worker stopped: %s", exc)
                    return 2
                failures = failures + 1 if exc is not None else 0
                delay = min(BACKOFF_MAX_S, 2.0 ** min(failures, 9)) if failures else 1.0
                if exc is not None:
                    # ImapTransient is already one line; anything else (the database away) is
                    # said in one line too, never a traceback.
                    why = str(exc) if isinstance(exc, ImapTransient) else f"{type(exc).__name__}: {_one_line(exc)}"
                    log.warning("%s; retrying in %.0f s", why, delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stopper), delay)
        finally:
            self._stop_thread.set()
            stopper.cancel()
            if self._session is not None:
                await asyncio.to_thread(self._session.close)
        return 0

    async def _session_loop(self, stop: asyncio.Event) -> None:
        session = await self._open()
        log.info("reading reports from %s (%s)", self.target.redacted(),
                 "IDLE" if "IDLE" in session.caps else f"polling every {self.poll_s:.0f} s")
        try:
            while not stop.is_set():
                stats = PassStats()
                await self._drain(session, stats)
                if stop.is_set():
                    return
                if "IDLE" in session.caps:
                    await self._call(session.idle, self.idle_s, self._stop_thread)
                else:
                    deadline = time.monotonic() + self.poll_s
                    while not stop.is_set() and time.monotonic() < deadline:
                        await asyncio.sleep(0.5)
                    await self._call(session.noop)
        finally:
            await asyncio.to_thread(session.close)
            self._session = None


# -- entry point (`mailcheck serve --mode reports`) ----------------------------------
async def serve_reports(url: str | None, *, team_id: str | None = None, stop: asyncio.Event | None = None,
                        database_url: str | None = None, once: bool = False) -> int:
    """The `reports` process: 0 when stopped; 2 on a bad URL, rejected login, missing folder
    or untrusted certificate. `once` (cron): one pass, a one-line summary on stderr, exit 0,
    or 1 when the server could not be reached (one line)."""
    import signal
    import sys

    from bot.storage import Store, StoreError

    try:
        target = parse_imap_url(url, os.environ.get("MAILCHECK_REPORTS_IMAP_CA") or None)
    except ImapConfigError as exc:
        print(f"mailcheck serve: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        store = await Store.open(database_url)
    except StoreError as exc:
        print(f"mailcheck serve: {exc}", file=sys.stderr, flush=True)
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    worker = ReportsWorker(target, ReportStore.of(store), team_id=team_id if team_id is not None else OPERATOR_SCOPE)
    try:
        if not once:
            return await worker.run(stop)
        try:
            st = await worker.run_once()
        except ImapFatal as exc:
            print(f"mailcheck serve: {exc}", file=sys.stderr, flush=True)
            return 2
        except ImapTransient as exc:
            print(f"mailcheck serve: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception as exc:  # the database away: one line, and cron tries again next time
            print(f"mailcheck serve: reports not stored ({type(exc).__name__}: {_one_line(exc)})",
                  file=sys.stderr, flush=True)
            return 1
        print(f"mailcheck reports: {st.messages} message(s) read, {st.reports_new} new report(s), "
              f"{st.reports_seen} already stored, {st.no_report} without a report", file=sys.stderr, flush=True)
        return 0
    finally:
        await store.close()
