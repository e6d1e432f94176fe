"""Domain audit wall time vs checkdmarc, and vs the critical-path lower bound.

Both tools ask the same fixture world (NSD + rbldnsd behind dnsmasq) through a
proxy that delays every DNS answer by --delay ms, measured in the same run.
The lower bound is the longest chain of dependent round trips in an audit
(MX -> MX host A/AAAA -> PTR -> PTR name A/AAAA = 4) times the delay.

Run: python -m benchmarks.audit_vs_checkdmarc [--delay 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.delayproxy import start_delay_proxy
from handlers.domain_audit import audit_domain
from handlers.net import Resolver
from tests.dnsworld import running_world

DOMAINS = ["good.example", "weak.example", "lookups.example", "badmx.example", "nomx.example"]
CHAIN = 4  # MX -> A -> PTR -> A


def run_checkdmarc(domains: list[str], host: str, port: int) -> float:
    import checkdmarc
    import dns.nameserver

    ns = [dns.nameserver.Do53Nameserver(host, port=port)]
    t0 = time.monotonic()
    checkdmarc.check_domains(domains, nameservers=ns, timeout=2.0)
    return time.monotonic() - t0


async def run_ours(domain: str, host: str, port: int, blocklists: bool = True) -> tuple[float, int]:
    resolver = Resolver(nameservers=[(host, port)], timeout=2.0)
    t0 = time.monotonic()
    report = await audit_domain(domain, resolver, blocklists=blocklists)
    return time.monotonic() - t0, len(report.findings)


def without_dead_fixture_list() -> str:
    """A MAILCHECK_BLOCKLISTS file: the default set minus the fixture list that never answers.

    The test world keeps one deliberately silent list (to test `unknown`); in a
    speed comparison it would only measure our DNS timeout.
    """
    import tempfile

    import yaml

    from knowledge.blocklists import default_blocklists

    data = default_blocklists().model_dump(mode="json")
    data["mode"] = "replace"
    data["lists"] = [e for e in data["lists"] if e["zone"] != "bl.blocklist.de"]
    fh = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump(data, fh)
    fh.close()
    return fh.name


def main() -> None:
    import logging
    import os

    logging.getLogger("checkdmarc").setLevel(logging.CRITICAL)
    os.environ["MAILCHECK_BLOCKLISTS"] = without_dead_fixture_list()
    ap = argparse.ArgumentParser()
    ap.add_argument("--delay", type=float, default=20.0, help="ms added to every DNS answer")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    delay = args.delay / 1000
    with running_world() as world:
        host, port, stop = start_delay_proxy(world.nameserver, delay)
        try:
            ours: dict[str, list[float]] = {d: [] for d in DOMAINS}
            ours_nobl: dict[str, list[float]] = {d: [] for d in DOMAINS}
            theirs: dict[str, list[float]] = {d: [] for d in DOMAINS}
            nfind: dict[str, int] = {}
            # Warm-up round (untimed): loads data files and the PSL once, as the bot has them loaded.
            for d in DOMAINS:
                asyncio.run(run_ours(d, host, port))
                run_checkdmarc([d], host, port)
            for _ in range(args.rounds):
                for d in DOMAINS:
                    t, n = asyncio.run(run_ours(d, host, port))
                    ours[d].append(t)
                    nfind[d] = n
                    ours_nobl[d].append(asyncio.run(run_ours(d, host, port, blocklists=False))[0])
                    theirs[d].append(run_checkdmarc([d], host, port))
        finally:
            stop()
    bound = CHAIN * delay
    print(f"DNS delay {args.delay:.0f} ms per answer; chain bound {CHAIN} round trips = {bound * 1000:.0f} ms")
    print(f"{'domain':<18}{'mailcheck ms':>14}{'w/o lists':>11}{'checkdmarc ms':>15}{'speed-up':>10}"
          f"{'w/o lists':>11}{'vs bound':>10}{'findings':>10}")
    ratios, ratios_nobl, bounds = [], [], []
    for d in DOMAINS:
        o, c = statistics.median(ours[d]), statistics.median(theirs[d])
        nb = statistics.median(ours_nobl[d])
        ratios.append(c / o)
        ratios_nobl.append(c / nb)
        bounds.append(o / bound)
        print(f"{d:<18}{o * 1000:>14.0f}{nb * 1000:>11.0f}{c * 1000:>15.0f}{c / o:>9.1f}x{c / nb:>10.1f}x"
              f"{o / bound:>9.1f}x{nfind[d]:>10}")
    print(f"median: the full audit (SPF, DKIM discovery, DMARC, MX, PTR/FCrDNS, MTA-STS, TLS-RPT, BIMI, DNSSEC "
          f"and ~45 blocklists) is {statistics.median(ratios):.1f}x faster than checkdmarc and "
          f"{statistics.median(bounds):.1f}x the critical-path bound; without blocklists (closer to "
          f"checkdmarc's scope) {statistics.median(ratios_nobl):.1f}x faster")


if __name__ == "__main__":
    main()
