"""Receiver-report parsing: mailcheck vs parsedmarc, same files, one run, offline.

The files are the report fixtures (tests/fixtures/reports: the shapes Google, Microsoft,
Yahoo, Mimecast, Fastmail, RFC 9990, Google and Mail.ru TLS-RPT and ARF reporters send)
plus a generated aggregate report of --records records (default 100,000) over --ips
distinct sources, as .xml and as .xml.gz. Each parser reads each file from bytes
(parsedmarc with offline=True and its bundled files: no DNS, no downloads). Printed per
file: whether the totals agree (messages and DMARC pass for aggregate reports, sessions
for TLS reports, source IP for failure reports), the time of each, and for the large
report the records per second and the throughput ratio.

    pip install '.[bench]'   # parsedmarc
    python benchmarks/reports_vs_parsedmarc.py [--records 100000] [--ips 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.reports.api import parse_blob  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "reports"


def generated_report(records: int, ips: int, seed: int = 13) -> bytes:
    rnd = random.Random(seed)
    pool = [f"198.51.{i // 250 % 250}.{i % 250 + 1}" if i % 2 else f"203.0.{i // 250 % 250}.{i % 250 + 1}"
            for i in range(ips)]
    rows = []
    for _ in range(records):
        ip = rnd.choice(pool)
        count = rnd.randint(1, 50)
        dkim = rnd.choice(("pass", "pass", "fail"))
        spf = rnd.choice(("pass", "fail", "fail"))
        sel = rnd.choice(("s1", "google", "k1"))
        rows.append(
            f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
            f"<disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>"
            "<identifiers><envelope_from>example.com</envelope_from><header_from>example.com</header_from>"
            f"</identifiers><auth_results><dkim><domain>example.com</domain><selector>{sel}</selector>"
            f"<result>{dkim}</result></dkim><spf><domain>example.com</domain><scope>mfrom</scope>"
            f"<result>{spf}</result></spf></auth_results></record>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback><version>1.0</version><report_metadata>"
            "<org_name>bench.example</org_name><email>dmarc@bench.example</email><report_id>bench-1</report_id>"
            "<date_range><begin>1795996800</begin><end>1796083199</end></date_range></report_metadata>"
            "<policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>"
            "<sp>none</sp><pct>100</pct></policy_published>" + "\n".join(rows) + "</feedback>\n").encode()


def ours(name: str, data: bytes) -> list[tuple[Any, ...]]:
    parsed = parse_blob(name, data)
    out: list[tuple[Any, ...]] = []
    for r in parsed.reports:
        if r.type == "dmarc-aggregate":
            out.append(("aggregate", r.messages, r.dmarc_pass))
        elif r.type == "tls-rpt":
            out.append(("tls", r.successful_sessions, r.failed_sessions))
        else:
            out.append(("failure", r.source_ip))
    return out


def theirs(data: bytes) -> list[tuple[Any, ...]]:
    import parsedmarc

    r = parsedmarc.parse_report_file(data, offline=True, always_use_local_files=True)
    rep = r["report"]
    if r["report_type"] == "aggregate":
        records = rep["records"]
        passed = sum(x["count"] for x in records
                     if "pass" in (x["policy_evaluated"]["dkim"], x["policy_evaluated"]["spf"]))
        return [("aggregate", sum(x["count"] for x in records), passed)]
    if r["report_type"] == "smtp_tls":
        return [("tls", sum(p["successful_session_count"] for p in rep["policies"]),
                 sum(p["failed_session_count"] for p in rep["policies"]))]
    return [("failure", rep["source"]["ip_address"])]


def best(fn: Any, rounds: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--ips", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        import parsedmarc  # noqa: F401
    except ImportError:
        print("parsedmarc is not installed: pip install '.[bench]'", file=sys.stderr)
        return 2
    logging.disable(logging.CRITICAL)  # parsedmarc logs every file it cannot parse
    files = [(p.name, p.read_bytes()) for p in sorted(FIXTURES.iterdir()) if p.suffix != ".py"]
    big = generated_report(args.records, args.ips)
    files += [(f"generated-{args.records}.xml", big), (f"generated-{args.records}.xml.gz", gzip.compress(big))]
    print(f"{'file':<62} {'agree':>6} {'ours ms':>9} {'parsedmarc ms':>14}")
    agree_all = True
    t_ours = t_theirs = 0.0
    for name, data in files:
        rounds = 1 if name.startswith("generated") else args.rounds
        to, mine = best(lambda n=name, d=data: ours(n, d), rounds)
        try:
            tt, other = best(lambda d=data: theirs(d), rounds)
        except Exception as exc:  # parsedmarc refuses the file: say so, compare nothing
            print(f"{name[:62]:<62} {'-':>6} {to * 1000:9.1f} {'refused':>14}  ({type(exc).__name__}: "
                  f"{str(exc)[:60]}); ours: {mine}")
            continue
        # parsedmarc reads one report per file (an mbox gives its first): compare what both read.
        same = mine[: len(other)] == other
        agree_all &= same
        t_ours += to
        t_theirs += tt
        print(f"{name[:62]:<62} {'yes' if same else 'NO':>6} {to * 1000:9.1f} {tt * 1000:14.1f}"
              + ("" if same else f"  ours {mine} parsedmarc {other}"))
        if name.startswith("generated"):
            print(f"    {args.records / to:,.0f} records/s (ours) vs {args.records / tt:,.0f} records/s "
                  f"(parsedmarc): {tt / to:.1f}x")
    print(f"\nall files both read: ours {t_ours:.2f} s, parsedmarc {t_theirs:.2f} s, "
          f"throughput ratio {t_theirs / t_ours:.1f}x; totals agree: {'yes' if agree_all else 'NO'}")
    return 0 if agree_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
