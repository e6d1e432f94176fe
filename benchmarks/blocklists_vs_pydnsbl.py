"""Blocklist throughput and correctness: mailcheck vs pydnsbl, in one run.

Both check the same N IPs against the same IPv4 block lists, served by a real
rbldnsd with the fixture zones (tests/fixtures/rbl: real zone names, a list
answering error codes, a dead list that lists everything, a list answering
outside 127/8) behind a proxy that delays every answer (default 20 ms), with
the same concurrency bound. Printed: (IP x list) checks per second of each,
the ratio, and the false "listed" verdicts of each against the fixture truth
(pydnsbl counts any A answer - error codes, dead lists - as a listing).

    python benchmarks/blocklists_vs_pydnsbl.py [--ips 200] [--delay 0.02] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.delayproxy import start_delay_proxy  # noqa: E402
from handlers.blocklists import check_blocklists  # noqa: E402
from handlers.net import Resolver  # noqa: E402
from knowledge.blocklists import BlocklistEntry, default_blocklists  # noqa: E402

RBL = ROOT / "tests" / "fixtures" / "rbl"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest() -> list[tuple[str, str, str]]:
    rows = []
    for line in (RBL / "zones.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            zone, kind, file = line.split()[:3]
            rows.append((zone, kind, file))
    return rows


def start_rbldnsd(workdir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    rbldnsd = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
    rdir = workdir / "rbl"
    shutil.copytree(RBL, rdir)
    os.chmod(workdir, 0o755)
    port = free_port()
    specs = [f"{z}:{k}:{f}" for z, k, f in manifest() if k not in ("TIMEOUT", "REFUSED")]
    cmd = [rbldnsd, "-n", "-a", "-e", "-t", "60", "-b", f"127.0.0.1/{port}", "-w", str(rdir)]
    proc = subprocess.Popen([*cmd, *specs], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise SystemExit("rbldnsd did not start")
    return port, proc


def fixture_truth(entries: list[BlocklistEntry]) -> set[tuple[str, str]]:
    """(zone, ip) pairs that are real listings in the fixture data."""
    kinds = {(z, k): f for z, k, f in manifest()}
    truth: set[tuple[str, str]] = set()
    for e in entries:
        f = kinds.get((e.zone, "ip4set"))
        if f is None:
            continue  # ip4trie = the dead list: lists everything, a real listing nowhere
        for line in (RBL / f).read_text().splitlines():
            parts = line.split()
            if not parts or line.startswith(("#", ":")):
                continue
            ip = parts[0]
            value = (
                parts[1].split(":")[1]
                if len(parts) > 1
                else ":".join(
                    next(li for li in (RBL / f).read_text().splitlines() if li.startswith(":")).split(":")[
                        1:2
                    ]
                )
            )
            if ip.startswith("127."):
                continue
            if ipaddress.ip_address(value) in ipaddress.ip_network("127.0.0.0/8") and not e.error_for(value):
                if not e.strict_codes or e.match(value):
                    truth.add((e.zone, ip))
    return truth


def bench_ips(n: int) -> list[str]:
    special = ["203.0.113.1", "203.0.113.4", "203.0.113.10", "203.0.113.11", "203.0.113.254",
               "203.0.113.99", "203.0.113.66", "203.0.113.77", "198.51.100.7", "198.51.100.25"]  # fmt: skip
    pool = [str(ipaddress.ip_address("198.51.100.0") + i) for i in range(256)]
    pool += [str(ipaddress.ip_address("203.0.113.0") + i) for i in range(256)]
    out = [ip for ip in special]
    for ip in pool:
        if len(out) >= n:
            break
        if ip not in out:
            out.append(ip)
    return out[:n]


async def run_ours(ns: tuple[str, int], ips: list[str], entries: list[BlocklistEntry], conc: int):
    resolver = Resolver(nameservers=[ns], timeout=2.0, concurrency=conc)
    t = time.perf_counter()
    rows, _ = await check_blocklists(resolver, ips, [], lists=entries)
    return (
        time.perf_counter() - t,
        {(r.zone, r.target) for r in rows if r.status == "listed"},
        resolver.stats.asked,
    )


def run_pydnsbl(ns: tuple[str, int], ips: list[str], zones: list[str], conc: int):
    import aiodns
    from pydnsbl import DNSBLIpChecker
    from pydnsbl.providers import Provider

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    checker = DNSBLIpChecker(
        providers=[Provider(z) for z in zones], timeout=2, tries=2, concurrency=conc, loop=loop
    )
    # Same resolver path as ours: the delaying proxy.
    checker._resolver = aiodns.DNSResolver(
        nameservers=[ns[0]], loop=loop, udp_port=ns[1], tcp_port=ns[1], timeout=2, tries=2
    )
    t = time.perf_counter()
    results = checker.bulk_check(ips)
    dt = time.perf_counter() - t
    listed = {(prov, r.addr) for r in results for prov in r.detected_by}
    failed = sum(len(r.failed_providers) for r in results)
    loop.close()
    return dt, listed, failed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ips", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.020)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    served = {z for z, k, _ in manifest() if k not in ("TIMEOUT", "REFUSED")}
    entries = [
        e for e in default_blocklists().live()
        if e.purpose == "block" and e.supports("ip4") and e.zone in served and not (e.key and e.key.required)
    ]  # fmt: skip
    zones = [e.zone for e in entries]
    ips = bench_ips(args.ips)
    truth = fixture_truth(entries) & {(z, ip) for z in zones for ip in ips}
    checks = len(ips) * len(zones)

    with tempfile.TemporaryDirectory(prefix="bl-bench-") as tmp:
        port, rbl = start_rbldnsd(Path(tmp))
        host, pport, stop = start_delay_proxy(("127.0.0.1", port), args.delay)
        try:
            ours_t, theirs_t = [], []
            ours_listed: set[tuple[str, str]] = set()
            theirs_listed: set[tuple[str, str]] = set()
            asked = failed = 0
            for _ in range(args.rounds):
                dt, ours_listed, asked = asyncio.run(run_ours((host, pport), ips, entries, args.concurrency))
                ours_t.append(dt)
                dt, theirs_listed, failed = run_pydnsbl((host, pport), ips, zones, args.concurrency)
                theirs_t.append(dt)
        finally:
            stop()
            rbl.terminate()
            rbl.wait(timeout=5)

    o, p = statistics.median(ours_t), statistics.median(theirs_t)
    print(
        f"{len(ips)} IPs x {len(zones)} IPv4 block lists = {checks} checks; delay {args.delay * 1000:.0f} ms "
        f"per answer; concurrency {args.concurrency}; median of {args.rounds} rounds"
    )
    print(
        f"  mailcheck: {o:6.3f} s  {checks / o:8.0f} checks/s  ({asked} DNS queries incl. test points + TXT)"
        f"  rounds: {' '.join(f'{x:.3f}' for x in ours_t)}"
    )
    print(
        f"  pydnsbl  : {p:6.3f} s  {checks / p:8.0f} checks/s  ({failed} failed lookups)"
        f"  rounds: {' '.join(f'{x:.3f}' for x in theirs_t)}"
    )
    wins = sum(a < b for a, b in zip(ours_t, theirs_t, strict=True))
    print(f"  ratio    : mailcheck is {p / o:.2f}x pydnsbl (median); faster in {wins} of {args.rounds} rounds")
    print(f"  fixture listings: {len(truth)}")
    for name, listed in (("mailcheck", ours_listed), ("pydnsbl", theirs_listed)):
        false = listed - truth
        missed = truth - listed
        print(f"  {name:9}: false 'listed' {len(false):4d}   missed listings {len(missed)}")
        by_zone: dict[str, int] = {}
        for z, _ in false:
            by_zone[z] = by_zone.get(z, 0) + 1
        if by_zone:
            print("             false by list: " + ", ".join(f"{z} {n}" for z, n in sorted(by_zone.items())))


if __name__ == "__main__":
    main()
