"""A real DNS test world on loopback: NSD + rbldnsd behind a dnsmasq forwarder.

- NSD serves every `tests/fixtures/zones/<zone>.zone` file (authoritative).
- rbldnsd serves every blocklist zone named in `tests/fixtures/rbl/zones.txt`
  (`<zone> <type> <file>`; type `TIMEOUT` = forwarded to a socket that never
  answers; type `REFUSED` = forwarded to a port nobody listens on).
- dnsmasq forwards each zone to the right daemon, so the code under test talks
  to one recursive-style resolver exactly as in production.

Each daemon runs in the foreground on an ephemeral high port and is stopped
when the world stops. CI installs the daemons (`.ci/run`); on a machine without
them the tests that need the world are skipped with a clear reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from handlers.net import Resolver

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ZONES = FIXTURES / "zones"
RBL = FIXTURES / "rbl"

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def daemons_available() -> bool:
    return all(os.access(p, os.X_OK) for p in (NSD, RBLDNSD, DNSMASQ))


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port")


def _wait_udp(port: int, proc: subprocess.Popen[bytes], name: str, log: Path, qname: str = "version.bind") -> None:
    """Wait until a daemon answers a DNS query (any rcode) on 127.0.0.1:port."""
    import dns.message
    import dns.query

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text(errors='replace') if log.exists() else ''}")
        try:
            q = dns.message.make_query(qname, "TXT", rdclass="CH" if qname == "version.bind" else "IN")
            dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start on port {port}")


def zone_names() -> list[str]:
    return sorted(p.name[: -len(".zone")] for p in ZONES.glob("*.zone"))


def rbl_manifest() -> list[tuple[str, str, str]]:
    path = RBL / "zones.txt"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 2:
            parts.append("-")
        zone, kind, file = parts[:3]
        rows.append((zone.rstrip(".").lower(), kind, file))
    return rows


@dataclass
class DNSWorld:
    workdir: Path
    nsd_port: int = 0
    rbl_port: int = 0
    port: int = 0  # dnsmasq: what the code under test uses
    dead_port: int = 0  # nothing listens: REFUSED/SERVFAIL upstream
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _blackhole: socket.socket | None = None
    _blackhole_tcp: socket.socket | None = None

    @property
    def nameserver(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def nameserver_spec(self) -> str:
        return f"127.0.0.1:{self.port}"

    def resolver(self, timeout: float = 1.0, **kw: object) -> Resolver:
        return Resolver(nameservers=[self.nameserver], timeout=timeout, **kw)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """Environment for a `mailcheck` subprocess that should use this world."""
        env = dict(os.environ)
        env["MAILCHECK_NAMESERVERS"] = self.nameserver_spec
        return env

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        self.nsd_port, self.rbl_port, self.port = free_port(), free_port(), free_port()
        self.dead_port = free_port()
        # A socket that accepts packets and never answers: a list that times out.
        from tests.support.ports import udp_tcp_pair

        self._blackhole, self._blackhole_tcp, _ = udp_tcp_pair()
        self._start_nsd()
        self._start_rbldnsd()
        self._start_dnsmasq()

    def _start_nsd(self) -> None:
        zdir = self.workdir / "zones"
        shutil.copytree(ZONES, zdir, dirs_exist_ok=True)
        conf = self.workdir / "nsd.conf"
        lines = [
            "server:",
            f"  ip-address: 127.0.0.1@{self.nsd_port}",
            f"  port: {self.nsd_port}",
            '  username: ""',
            f'  zonesdir: "{zdir}"',
            f'  pidfile: "{self.workdir}/nsd.pid"',
            f'  xfrdfile: "{self.workdir}/xfrd.state"',
            f'  zonelistfile: "{self.workdir}/zone.list"',
            f'  logfile: "{self.workdir}/nsd.log"',
            '  database: ""',
            "  server-count: 1",
            "  verbosity: 1",
            "  hide-version: yes",
            "  minimal-responses: no",
            "  rrl-ratelimit: 0",  # heavy tests ask many missing names: never drop answers
            "remote-control:",
            "  control-enable: no",
        ]
        for z in zone_names():
            lines += ["zone:", f"  name: {z}", f'  zonefile: "{z}.zone"']
        conf.write_text("\n".join(lines) + "\n")
        log = self.workdir / "nsd.log"
        check = subprocess.run([NSD + "-checkconf", str(conf)], capture_output=True, text=True)
        if check.returncode != 0 and os.path.exists(NSD + "-checkconf"):
            raise RuntimeError(f"nsd.conf invalid: {check.stderr}{check.stdout}")
        proc = subprocess.Popen(
            [NSD, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=open(log, "ab")
        )
        self.procs["nsd"] = proc
        first = zone_names()[0] if zone_names() else "version.bind"
        _wait_udp(self.nsd_port, proc, "nsd", log, first)

    def _start_rbldnsd(self) -> None:
        rows = [r for r in rbl_manifest() if r[1] not in ("TIMEOUT", "REFUSED")]
        if not rows:
            return
        rdir = self.workdir / "rbl"
        shutil.copytree(RBL, rdir, dirs_exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for p in [rdir, *rdir.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        specs = [f"{zone}:{kind}:{file}" for zone, kind, file in rows]
        log = self.workdir / "rbldnsd.log"
        cmd = [RBLDNSD, "-n", "-a", "-e", "-t", "60", "-c", "1s", "-b", f"127.0.0.1/{self.rbl_port}", "-w", str(rdir)]
        if os.geteuid() == 0:
            # rbldnsd refuses to run as root: drop to its Debian user (or nobody).
            import pwd

            try:
                user = pwd.getpwnam("rbldns").pw_name
            except KeyError:
                user = "nobody"
            cmd[1:1] = ["-u", user]
        proc = subprocess.Popen([*cmd, *specs], stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        self.procs["rbldnsd"] = proc
        _wait_udp(self.rbl_port, proc, "rbldnsd", log, rows[0][0])

    def _start_dnsmasq(self) -> None:
        assert self._blackhole is not None
        hole = self._blackhole.getsockname()[1]
        log = self.workdir / "dnsmasq.log"
        cmd = [
            DNSMASQ,
            "-k",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={self.port}",
            "--cache-size=0",  # fixture zones change between tests (reload): never serve stale data
            "--proxy-dnssec",
            "--pid-file=",
            f"--log-facility={log}",
            "--dns-forward-max=1000",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        for z in zone_names():
            cmd.append(f"--server=/{z}/127.0.0.1#{self.nsd_port}")
        # `<zone>.timeout` / `<zone>.refused` markers in the zones folder: a domain whose
        # servers never answer, or whose lookups fail (SERVFAIL/REFUSED).
        for marker in ZONES.glob("*.timeout"):
            cmd.append(f"--server=/{marker.name[: -len('.timeout')]}/127.0.0.1#{hole}")
        for marker in ZONES.glob("*.refused"):
            cmd.append(f"--server=/{marker.name[: -len('.refused')]}/127.0.0.1#{self.dead_port}")
        for zone, kind, _file in rbl_manifest():
            if kind == "TIMEOUT":
                cmd.append(f"--server=/{zone}/127.0.0.1#{hole}")
            elif kind == "REFUSED":
                cmd.append(f"--server=/{zone}/127.0.0.1#{self.dead_port}")
            else:
                cmd.append(f"--server=/{zone}/127.0.0.1#{self.rbl_port}")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        self.procs["dnsmasq"] = proc
        probe = zone_names()[0] if zone_names() else "version.bind"
        _wait_udp(self.port, proc, "dnsmasq", log, probe)

    def write_zone(self, zone: str, text: str) -> None:
        """Replace a zone's data and make NSD serve it (change-detection tests)."""
        (self.workdir / "zones" / f"{zone}.zone").write_text(text)
        self.reload()

    def reload(self) -> None:
        proc = self.procs["nsd"]
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for s in (self._blackhole, self._blackhole_tcp):
            if s is not None:
                s.close()


@contextlib.contextmanager
def running_world() -> Iterator[DNSWorld]:
    with tempfile.TemporaryDirectory(prefix="mailcheck-dns-") as tmp:
        world = DNSWorld(Path(tmp))
        try:
            world.start()
            yield world
        finally:
            world.stop()
