"""A real Dovecot IMAP server for the tests (Debian `dovecot-imapd`), on a loopback high port.

    with running_dovecot() as dc:          # or the `dovecot` pytest fixture below
        dc.append(b"From: ...")            # deliver a message over IMAP (APPEND)
        dc.url("INBOX")                    # imap://reports:PASSWORD@127.0.0.1:PORT/INBOX
        dc.messages("INBOX")               # [(uid, flags, raw bytes)]

`running_dovecot(tls=True)` also listens for IMAPS (`dc.tls_port`) and offers STARTTLS
on the plain port, with a self-signed certificate for 127.0.0.1 made for the run
(`dc.ca_file` is that certificate, for the client to trust).

Everything lives in a temporary directory: configuration, base_dir (sockets),
state_dir, log and the maildir; a passwd-file holds one test user. Nothing under
/etc or /var is read or written (`dovecot -F -c CONF`, foreground, stopped with
SIGTERM). Run by root, Dovecot refuses root for its login and mail processes, so
those run as Debian's `dovenull` / `dovecot` / `nobody` users and the directory is
made readable for them; run by anyone else, every process is that user.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
USER, PASSWORD = "reports", "imap-test-secret-7f3a"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes], tls_port: int | None = None) -> None:
        self.root, self.port, self.proc, self.tls_port = root, port, proc, tls_port
        self.host, self.user, self.password = "127.0.0.1", USER, PASSWORD
        self.ca_file = root / "cert.pem"

    def url(self, folder: str = "INBOX", *, password: str | None = None, scheme: str = "imap") -> str:
        port = self.tls_port if scheme == "imaps" else self.port
        return f"{scheme}://{self.user}:{password or self.password}@{self.host}:{port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4(self.host, self.port, timeout=30)
        c.login(self.user, self.password)
        return c

    def append(self, message: bytes, folder: str = "INBOX", flags: str | None = None) -> None:
        c = self.client()
        try:
            if folder.upper() != "INBOX":
                c.create(folder)
            typ, data = c.append(folder, flags, None, message)
            assert typ == "OK", data
        finally:
            c.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[int, set[str], bytes]]:
        """(uid, flags, message) of every message in `folder` ([] when it does not exist)."""
        c = self.client()
        try:
            typ, _ = c.select(folder, readonly=True)
            if typ != "OK":
                return []
            typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            out: list[tuple[int, set[str], bytes]] = []
            for item in data or []:
                if not isinstance(item, tuple):
                    continue
                head = item[0].decode("ascii", "replace")
                uid = re.search(r"UID (\d+)", head)
                fl = re.search(r"FLAGS \(([^)]*)\)", head)
                out.append((int(uid.group(1)) if uid else 0, set(fl.group(1).split()) if fl else set(), item[1]))
            return out
        finally:
            c.logout()

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def _self_signed(root: Path) -> None:
    """cert.pem / key.pem: a self-signed certificate for IP 127.0.0.1 (and localhost)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailcheck test IMAP")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))


def _config(root: Path, port: int, tls_port: int | None = None) -> str:
    if os.geteuid() == 0:
        login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
        mail = pwd.getpwnam("nobody")
        uid, gid = mail.pw_uid, mail.pw_gid
    else:
        me = pwd.getpwuid(os.geteuid()).pw_name
        login_user = internal_user = me
        internal_group = grp.getgrgid(os.getegid()).gr_name
        uid, gid = os.geteuid(), os.getegid()
    ssl = (f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem" if tls_port else "ssl = no")
    return f"""# mailcheck test server (tests/support/dovecot.py)
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port or 0}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


def _wait_ready(dc: Dovecot, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        if dc.proc.poll() is not None:
            raise RuntimeError(f"dovecot exited ({dc.proc.returncode}): {dc.log()[-2000:]}")
        try:
            dc.client().logout()
            return
        except (OSError, imaplib.IMAP4.error) as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{dc.port}: {last}; log: {dc.log()[-2000:]}")


@contextlib.contextmanager
def running_dovecot(*, tls: bool = False) -> Iterator[Dovecot]:
    if DOVECOT is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI must run the IMAP tests: dovecot not installed (apt-get install dovecot-imapd)")
        pytest.skip("dovecot not installed (apt-get install dovecot-imapd)")
    # Not pytest's tmp_path: that is mode 0700 under root, and the login / mail
    # processes of a root-started Dovecot run as other users.
    root = Path(tempfile.mkdtemp(prefix="mailcheck-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for sub in ("mail", "home"):
            os.chown(root / sub, nobody.pw_uid, nobody.pw_gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    tls_port = _free_port() if tls else None
    if tls:
        _self_signed(root)
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls_port))
    with open(root / "dovecot.log", "ab") as early:  # config errors come before log_path is in use
        proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=early, stderr=early)
    dc = Dovecot(root, port, proc, tls_port)
    try:
        _wait_ready(dc)
        yield dc
    finally:
        dc.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as dc:
        yield dc


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    with running_dovecot(tls=True) as dc:
        yield dc
