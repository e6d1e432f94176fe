"""Capture real Postfix output (log lines and bounce DSNs) for the bounce tests.

Runs a private Postfix instance (Debian's `postfix`, 3.7 here) from a temporary
config directory, points its SMTP client at scripted receivers on loopback
aliases (127.0.0.x, port 25), injects one message per scenario, lets Postfix
deliver, defer, bounce and expire them exactly as it does in production, and
saves what an admin would paste:

- `tests/fixtures/postfix/maillog` — Postfix's own log (maillog_file, postlogd),
- `tests/fixtures/postfix/dsn-<id>.eml` — every DSN Postfix sent back,
- `tests/fixtures/postfix/cases.json` — which recipient got which scripted reply.

The receivers reply with the wording the providers document (knowledge_facts.md
and the providers' help pages); everything else — the log format, the DSN, the
line folding, "(in reply to RCPT TO command)", the queue-expiry notices — is
Postfix's own. Host names are mapped to loopback through /etc/hosts while the
capture runs (a marked block, removed afterwards), so no packet leaves the
machine.

Run as root: python tools/postfix_capture.py [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTS_MARK = "# mailcheck postfix_capture"


@dataclass(frozen=True)
class Receiver:
    """One scripted receiving MTA on a loopback alias."""

    host: str  # the MX host name Postfix connects to
    ip: str
    greeting: str = "220 {host} ESMTP ready"
    # local part -> (stage, reply); stage is "rcpt" or "data"; unknown local parts get 250
    replies: tuple[tuple[str, str, str], ...] = ()
    silent: bool = False  # accept the TCP connection, never say anything


SENDER = "shop@sender.example"
RECEIVERS: list[Receiver] = [
    Receiver(
        "gmail-smtp-in.l.google.com", "127.0.0.2",
        greeting="220 mx.google.com ESMTP a1si123456.1 - gsmtp",
        replies=(
            ("nosuchuser", "rcpt",
             "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
             "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
             "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
             "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123456.1 - gsmtp"),
            ("ipv6unauth", "data",
             "550-5.7.1 [2001:db8:1302:3134::25] The IP you're using to send mail\r\n"
             "550-5.7.1 is not authorized to send email directly to our servers. Please\r\n"
             "550-5.7.1 use the SMTP relay at your service provider instead. Learn more\r\n"
             "550 5.7.1  https://support.google.com/mail/?p=NotAuthorizedError a1si123456.2 - gsmtp"),
            ("unauth", "data",
             "550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n"
             "550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM.\r\n"
             "550-5.7.26\r\n"
             "550-5.7.26  Authentication results:\r\n"
             "550-5.7.26  DKIM = did not pass\r\n"
             "550-5.7.26  SPF [sender.example] with ip: [192.0.2.25] = did not pass\r\n"
             "550-5.7.26\r\n"
             "550-5.7.26  For instructions on setting up authentication, go to\r\n"
             "550 5.7.26  https://support.google.com/mail/answer/81126#authentication a1si123456.3 - gsmtp"),
            ("ratelimited", "rcpt",
             "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating\r\n"
             "421-4.7.28 from your SPF domain [sender.example 12]. To protect our users from spam,\r\n"
             "421-4.7.28 mail sent from your domain has been temporarily rate limited. For more\r\n"
             "421 4.7.28 information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError a1si123456.4 - gsmtp"),
            ("full", "rcpt",
             "452-4.2.2 The recipient's inbox is out of storage space. Please direct the\r\n"
             "452-4.2.2 recipient to\r\n"
             "452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp a1si123456.5 - gsmtp"),
            ("ok", "data", "250 2.0.0 OK  1700000000 a1si123456.6 - gsmtp"),
        ),
    ),
    Receiver(
        "example-com.mail.protection.outlook.com", "127.0.0.3",
        greeting="220 AM0PR01MB1234.eurprd01.prod.exchangelabs.com Microsoft ESMTP MAIL Service ready",
        replies=(
            ("nosuchuser", "rcpt",
             "550 5.4.1 Recipient address rejected: Access denied. For more information see "
             "https://aka.ms/EXOSmtpErrors [AM0PR01MB1234.eurprd01.prod.exchangelabs.com]"),
            ("banned", "rcpt",
             "550 5.7.606 Access denied, banned sending IP [192.0.2.25]. To request removal from "
             "this list please visit https://sender.office.com/ and follow the directions. For more "
             "information please go to http://go.microsoft.com/fwlink/?LinkID=526655 "
             "AS(1430) [AM0PR01MB1234.eurprd01.prod.exchangelabs.com]"),
        ),
    ),
    Receiver(
        "mx1.hotmail.com", "127.0.0.4",
        greeting="220 BL02EPF0001A0FA.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready",
        replies=(
            ("blocked", "rcpt",
             "550 5.7.1 Unfortunately, messages from [192.0.2.25] weren't sent. Please contact your "
             "Internet service provider since part of their network is on our block list (S3150). "
             "You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. "
             "[BL02EPF0001A0FA.namprd09.prod.outlook.com 2025-01-01T00:00:00.000Z 08DC0000000000]"),
            ("sent", "data",
             "250 2.6.0 <20250101000000.ABC123@sender.example> [InternalId=1234567890, "
             "Hostname=BL02EPF0001A0FA.namprd09.prod.outlook.com] 12345 bytes in 0.123, 97.245 KB/sec "
             "Queued mail for delivery -> 250 2.1.5"),
        ),
    ),
    Receiver(
        "mta7.am0.yahoodns.net", "127.0.0.5",
        greeting="220 mtaproxy1.free.mail.bf1.yahoo.com ESMTP ready",
        replies=(
            ("deferred", "rcpt",
             "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected "
             "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"),
            ("nosuchuser", "rcpt", "554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes"),
            ("gone", "rcpt", "552 1 Requested mail action aborted, mailbox not found"),
        ),
    ),
    Receiver(
        "mx.biglobe.ne.jp", "127.0.0.6",
        replies=(
            ("nosuchuser", "rcpt", "550 5.1.1 <nosuchuser@biglobe.ne.jp>: Recipient address rejected: User unknown in local recipient table"),
            ("toobig", "data", "552 5.3.4 Error: message file too big"),
        ),
    ),
    Receiver("mx.ezweb.ne.jp", "127.0.0.7", greeting="554 5.7.1 mx.ezweb.ne.jp ESMTP not accepting connections"),
    Receiver("mx.silent.example", "127.0.0.8", silent=True),
    # The DSNs Postfix sends back to the sender land here.
    Receiver("mx.sender.example", "127.0.0.9"),
]
# Names Postfix will look up; one is deliberately missing from /etc/hosts.
TRANSPORTS = {
    "gmail.com": "smtp:[gmail-smtp-in.l.google.com]",
    "customer.example": "smtp:[example-com.mail.protection.outlook.com]",
    "hotmail.com": "smtp:[mx1.hotmail.com]",
    "yahoo.com": "smtp:[mta7.am0.yahoodns.net]",
    "biglobe.ne.jp": "smtp:[mx.biglobe.ne.jp]",
    "ezweb.ne.jp": "smtp:[mx.ezweb.ne.jp]",
    "silent.example": "smtp:[mx.silent.example]",
    "refused.example": "smtp:[mx.refused.example]",  # 127.0.0.10: nothing listens
    "nxdomain.example": "smtp:[mx.nxdomain.example]",  # not in /etc/hosts
    "sender.example": "smtp:[mx.sender.example]",
}
EXTRA_HOSTS = {"mx.refused.example": "127.0.0.10"}
RECIPIENTS = [
    "nosuchuser@gmail.com", "ipv6unauth@gmail.com", "unauth@gmail.com", "ratelimited@gmail.com",
    "full@gmail.com", "ok@gmail.com",
    "nosuchuser@customer.example", "banned@customer.example",
    "blocked@hotmail.com", "sent@hotmail.com",
    "deferred@yahoo.com", "nosuchuser@yahoo.com", "gone@yahoo.com",
    "nosuchuser@biglobe.ne.jp", "toobig@biglobe.ne.jp",
    "anyone@ezweb.ne.jp", "anyone@silent.example", "anyone@refused.example", "anyone@nxdomain.example",
    "nosuchlocaluser@localhost.sender.example",
]

# What each recipient's outcome means, in SPEC.md's reason vocabulary (Sisimai's), and who
# answered. Where Sisimai's own tables would accept two readings, both are listed.
EXPECT: dict[str, dict[str, object]] = {
    "nosuchuser@gmail.com": {"reason": ["userunknown"], "provider": "google"},
    "ipv6unauth@gmail.com": {"reason": ["norelaying", "blocked"], "provider": "google"},
    "unauth@gmail.com": {"reason": ["authfailure"], "provider": "google"},
    "ratelimited@gmail.com": {"reason": ["blocked", "ratelimited", "expired"], "provider": "google"},
    "full@gmail.com": {"reason": ["mailboxfull", "expired"], "provider": "google"},
    "ok@gmail.com": {"reason": ["delivered"], "provider": "google"},
    "nosuchuser@customer.example": {"reason": ["userunknown"], "provider": "microsoft"},
    "banned@customer.example": {"reason": ["blocked"], "provider": "microsoft"},
    "blocked@hotmail.com": {"reason": ["blocked"], "provider": "microsoft"},
    "sent@hotmail.com": {"reason": ["delivered"], "provider": "microsoft"},
    "deferred@yahoo.com": {"reason": ["badreputation", "blocked", "rejected", "expired"], "provider": "yahoo"},
    "nosuchuser@yahoo.com": {"reason": ["policyviolation", "rejected"], "provider": "yahoo"},
    "gone@yahoo.com": {"reason": ["userunknown"], "provider": "yahoo"},
    "nosuchuser@biglobe.ne.jp": {"reason": ["userunknown"], "provider": "biglobe"},
    "toobig@biglobe.ne.jp": {"reason": ["emailtoolarge"], "provider": "biglobe"},
    "anyone@ezweb.ne.jp": {"reason": ["blocked", "rejected", "expired"], "provider": "kddi"},
    "anyone@silent.example": {"reason": ["networkerror", "expired"], "provider": None},
    "anyone@refused.example": {"reason": ["expired", "networkerror"], "provider": None},
    "anyone@nxdomain.example": {"reason": ["hostunknown"], "provider": None},
    "nosuchlocaluser@localhost.sender.example": {"reason": ["userunknown"], "provider": None},
}


class Sink:
    """A minimal SMTP receiver that answers each recipient as scripted."""

    def __init__(self, rcv: Receiver, store: Path) -> None:
        self.rcv = rcv
        self.store = store
        self.replies = {lp: (stage, reply) for lp, stage, reply in rcv.replies}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.rcv.silent:
            await asyncio.sleep(60)
            return
        greeting = self.rcv.greeting.format(host=self.rcv.host)

        def say(line: str) -> None:
            writer.write((line + "\r\n").encode())

        say(greeting)
        if greeting.startswith("5"):
            # Keep answering so Postfix can QUIT politely, as real servers do.
            while raw := await reader.readline():
                say("221 2.0.0 Bye" if raw.upper().startswith(b"QUIT") else "503 5.5.1 Bad sequence")
            return
        rcpts: list[str] = []
        while True:
            line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say(f"250-{self.rcv.host} Hello\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250 8BITMIME")
            elif verb == "MAIL":
                rcpts = []
                say("250 2.1.0 OK")
            elif verb == "RCPT":
                addr = line.partition(":")[2].strip().strip("<>").split(">")[0]
                stage, reply = self.replies.get(addr.split("@")[0].lower(), ("", ""))
                if stage == "rcpt":
                    say(reply)
                else:
                    rcpts.append(addr)
                    say("250 2.1.5 OK")
            elif verb == "DATA":
                say("354 Go ahead")
                body = bytearray()
                while True:
                    chunk = await reader.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    body += chunk
                replies = [self.replies.get(r.split("@")[0].lower(), ("", "")) for r in rcpts]
                data_reply = next((r for s, r in replies if s == "data"), "")
                if not data_reply and any(r.endswith("@sender.example") for r in rcpts):
                    name = f"msg-{time.time_ns()}.eml"
                    (self.store / name).write_bytes(bytes(body))
                say(data_reply or "250 2.0.0 OK queued")
            elif verb == "QUIT":
                say("221 2.0.0 Bye")
                await writer.drain()
                return
            elif verb in ("RSET", "NOOP"):
                say("250 2.0.0 OK")
            else:
                say("502 5.5.2 Command not recognized")
            await writer.drain()


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.sender.example
mydomain = sender.example
myorigin = sender.example
mydestination = localhost.sender.example
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = {log}
maillog_file_prefixes = {work}
transport_maps = texthash:{cfg}/transport
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_connect_timeout = 3s
smtp_helo_timeout = 3s
smtp_tls_security_level = none
smtpd_banner = $myhostname ESMTP
maximal_queue_lifetime = 20s
bounce_queue_lifetime = 20s
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
delay_warning_time = 6s
biff = no
"""

MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _hosts_block() -> str:
    names = {r.host: r.ip for r in RECEIVERS} | EXTRA_HOSTS
    return "".join(f"{ip} {host} {HOSTS_MARK}\n" for host, ip in names.items())


def _edit_hosts(add: bool) -> None:
    path = Path("/etc/hosts")
    kept = [ln for ln in path.read_text().splitlines(keepends=True) if HOSTS_MARK not in ln]
    path.write_text("".join(kept) + (_hosts_block() if add else ""))


def _postfix(cfg: Path, *args: str) -> None:
    subprocess.run(["postfix", "-c", str(cfg), *args], check=True, capture_output=True)


async def capture(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="pfx-"))
    work.chmod(0o755)  # Postfix's own users must reach the queue and data directories
    cfg, spool, data, store = work / "etc", work / "spool", work / "data", work / "received"
    for d in (cfg, spool, data, store):
        d.mkdir(parents=True)
    log = work / "maillog"
    (cfg / "main.cf").write_text(MAIN_CF.format(spool=spool, data=data, log=log, cfg=cfg, work=work))
    (cfg / "master.cf").write_text(MASTER_CF)
    (cfg / "transport").write_text("".join(f"{d} {t}\n" for d, t in TRANSPORTS.items()))
    shutil.chown(data, "postfix")
    servers = []
    for rcv in RECEIVERS:
        sink = Sink(rcv, store)
        servers.append(await asyncio.start_server(sink.handle, rcv.ip, 25))
    _edit_hosts(True)
    try:
        _postfix(cfg, "check")
        _postfix(cfg, "start")
        for n, rcpt in enumerate(RECIPIENTS):
            msg = (
                f"From: Shop <{SENDER}>\nTo: <{rcpt}>\nSubject: Order {n}\n"
                f"Message-ID: <order-{n}@sender.example>\n\nThank you for your order.\n"
            )
            subprocess.run(
                ["sendmail", "-C", str(cfg), "-f", SENDER, rcpt], input=msg.encode(), check=True
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            q = subprocess.run(["postqueue", "-c", str(cfg), "-p"], capture_output=True, text=True).stdout
            if "Mail queue is empty" in q:
                break
        await asyncio.sleep(3)  # let the last DSNs reach the sender's receiver
        _postfix(cfg, "stop")
    finally:
        _edit_hosts(False)
        for s in servers:
            s.close()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, out / "maillog")
    dsns = sorted(store.glob("msg-*.eml"))
    for i, p in enumerate(dsns):
        shutil.copy(p, out / f"dsn-{i:02d}.eml")
    scripted = {
        f"{lp}@{dom}": {"host": r.host, "stage": stage, "reply": reply}
        for r in RECEIVERS for lp, stage, reply in r.replies
        for dom, t in TRANSPORTS.items() if t.endswith(f"[{r.host}]")
    }
    (out / "cases.json").write_text(json.dumps({"expect": EXPECT, "scripted": scripted}, indent=1))
    print(f"{len(dsns)} DSNs and {sum(1 for _ in log.open())} log lines in {out}")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "postfix")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("postfix"):
        sys.exit("postfix_capture: needs root and Debian's postfix package")
    asyncio.run(capture(args.out))


if __name__ == "__main__":
    main()
