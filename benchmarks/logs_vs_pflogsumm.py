"""`mailcheck logs` against pflogsumm on one generated Postfix log, in one run.

    python benchmarks/logs_vs_pflogsumm.py            # 1 GB log (the goal's size)
    python benchmarks/logs_vs_pflogsumm.py --size 100M

Generates a realistic Postfix log (pickup/cleanup/qmgr/smtp/removed per message,
several providers, multi-recipient messages, deferrals that later deliver or expire,
bounces with the providers' real reply texts, smtpd rejects, an hour where Gmail starts
rate limiting) into a temp dir, runs /usr/sbin/pflogsumm and our reader on it, and prints
throughput of each, the ratio, our peak RSS, and whether the totals agree.
Goal: >= 2x pflogsumm's throughput, peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Real reply texts (tests/fixtures/postfix/maillog, ../shared/corpus/bounces).
_DEST = [
    ("gmail.com", "gmail-smtp-in.l.google.com", "142.250.4.27", "2404:6800:4008:c19::1b",
     "250 2.0.0 OK  1733280000 a1si123456plb.12 - gsmtp"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", "52.101.68.9", None,
     "250 2.6.0 <{mid}> [InternalId=123, Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com] Queued mail for delivery"),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", "52.101.40.1", None,
     "250 2.6.0 <{mid}> Queued mail for delivery"),
    ("yahoo.com", "mta7.am0.yahoodns.net", "67.195.204.72", None, "250 ok dirdel"),
    ("docomo.ne.jp", "mfsmax.docomo.ne.jp", "203.138.181.240", None, "250 2.0.0 Ok: queued as 4Y7x"),
    ("ezweb.ne.jp", "mx.ezweb.ne.jp", "111.86.248.1", None, "250 ok"),
    ("example.co.jp", "mx1.example.co.jp", "192.0.2.80", None, "250 2.0.0 Ok: queued as 8A1B2C"),
]
_DEFER = {
    "gmail.com": "host gmail-smtp-in.l.google.com[{ip}] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail. To protect our users from spam, mail has been temporarily rate limited. 421 4.7.28  https://support.google.com/mail/?p=UnsolicitedRateLimitError a1si1234 - gsmtp (in reply to end of DATA command)",
    "yahoo.com": "host mta7.am0.yahoodns.net[{ip}] said: 421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)",
    "example.co.jp": "connect to mx1.example.co.jp[192.0.2.80]:25: Connection timed out",
}
_BOUNCE = {
    "gmail.com": "host gmail-smtp-in.l.google.com[{ip}] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si1234 - gsmtp (in reply to RCPT TO command)",
    "outlook.com": "host outlook-com.olc.protection.outlook.com[{ip}] said: 550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). (in reply to RCPT TO command)",
    "docomo.ne.jp": "host mfsmax.docomo.ne.jp[{ip}] said: 550 Unknown user {rcpt} (in reply to end of DATA command)",
    "ezweb.ne.jp": "host mx.ezweb.ne.jp[{ip}] refused to talk to me: 554 5.7.1 mx.ezweb.ne.jp ESMTP not accepting connections",
}
_V6_REFUSAL = ("host gmail-smtp-in.l.google.com[{ip}] said: 550-5.7.1 [2001:db8:1302:3134::25] The IP you're using to send mail "
               "is not authorized to send email directly to our servers. Please use 550-5.7.1 the SMTP relay at your service "
               "provider instead. Learn more at 550 5.7.1  https://support.google.com/mail/?p=NotAuthorizedError a1si1 - gsmtp "
               "(in reply to end of DATA command)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_QCHARS = "0123456789ABCDEF"


def _stamp(t: float) -> str:
    g = time.gmtime(t)
    return f"{_MONTHS[g.tm_mon - 1]} {g.tm_mday:2d} {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"


def generate(path: Path, size: int, seed: int = 14, start: float = 1796342400.0) -> int:
    """Write a Postfix log of about ``size`` bytes; returns the number of messages."""
    rnd = random.Random(seed)
    t = start
    n = 0
    written = 0
    pid = 20000
    with path.open("w", encoding="utf-8") as fh:
        while written < size:
            n += 1
            t += rnd.random() * 0.8
            qid = "".join(rnd.choice(_QCHARS) for _ in range(11))
            ts = _stamp(t)
            rcpts = [rnd.choice(_DEST) for _ in range(1 if rnd.random() < 0.8 else rnd.randint(2, 4))]
            out = [
                f"{ts} mta postfix/pickup[{pid}]: {qid}: uid=1000 from=<shop@sender.example>\n",
                f"{ts} mta postfix/cleanup[{pid + 1}]: {qid}: message-id=<o{n}@sender.example>\n",
                f"{ts} mta postfix/qmgr[{pid + 2}]: {qid}: from=<shop@sender.example>, size={rnd.randint(900, 90000)}, nrcpt={len(rcpts)} (queue active)\n",
            ]
            hour = int((t - start) // 3600)
            expired = False
            for i, (dom, host, ip4, ip6, ok) in enumerate(rcpts):
                rcpt = f"user{rnd.randint(1, 99999)}@{dom}"
                ip = ip6 if ip6 and rnd.random() < 0.3 else ip4
                relay = f"{host}[{ip}]:25"
                r = rnd.random()
                rate_limited = dom == "gmail.com" and hour % 24 in (3, 4) and r < 0.5
                if ip6 and ip == ip6 and r < 0.7:
                    out.append(f"{ts} mta postfix/smtp[{pid + 3}]: {qid}: to=<{rcpt}>, relay={relay}, delay=1.2, delays=0.1/0/0.5/0.6, dsn=5.7.1, status=bounced ({_V6_REFUSAL.format(ip=ip)})\n")
                elif rate_limited or (dom in _DEFER and r < 0.08):
                    text = _DEFER.get(dom, "").format(ip=ip)
                    rly = "none" if "connect to" in text else relay
                    out.append(f"{ts} mta postfix/smtp[{pid + 3}]: {qid}: to=<{rcpt}>, relay={rly}, delay=3.1, delays=0.1/0/3/0, dsn=4.7.0, status=deferred ({text})\n")
                    if r < 0.02 and i == 0:
                        expired = True
                    else:
                        later = _stamp(t + 900)
                        out.append(f"{later} mta postfix/smtp[{pid + 4}]: {qid}: to=<{rcpt}>, relay={relay}, delay=900, delays=899/0/0.5/0.5, dsn=2.0.0, status=sent ({ok.format(mid=f'o{n}@sender.example')})\n")
                elif dom in _BOUNCE and r < 0.12:
                    out.append(f"{ts} mta postfix/smtp[{pid + 3}]: {qid}: to=<{rcpt}>, relay={relay}, delay=0.9, delays=0.1/0/0.4/0.4, dsn=5.1.1, status=bounced ({_BOUNCE[dom].format(ip=ip, rcpt=rcpt)})\n")
                else:
                    out.append(f"{ts} mta postfix/smtp[{pid + 3}]: {qid}: to=<{rcpt}>, relay={relay}, delay=0.8, delays=0.1/0/0.3/0.4, dsn=2.0.0, status=sent ({ok.format(mid=f'o{n}@sender.example')})\n")
            if expired:
                out.append(f"{_stamp(t + 5 * 86400)} mta postfix/qmgr[{pid + 2}]: {qid}: from=<shop@sender.example>, status=expired, returned to sender\n")
            out.append(f"{ts} mta postfix/qmgr[{pid + 2}]: {qid}: removed\n")
            if rnd.random() < 0.05:
                out.append(f"{ts} mta postfix/smtpd[{pid + 5}]: NOQUEUE: reject: RCPT from unknown[198.51.100.{rnd.randint(1, 254)}]: 554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org; from=<x@spam.example> to=<info@sender.example> proto=ESMTP helo=<spam>\n")
            chunk = "".join(out)
            fh.write(chunk)
            written += len(chunk)
    return n


_PFL = {"delivered": r"^\s+(\d+)([km]?)\s+delivered", "deferred": r"^\s+(\d+)([km]?)\s+deferred",
        "bounced": r"^\s+(\d+)([km]?)\s+bounced", "rejected": r"^\s+(\d+)([km]?)\s+rejected"}


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def pflogsumm_totals(path: Path) -> tuple[dict[str, int], float, float]:
    """Totals, wall seconds and CPU seconds of one pflogsumm run."""
    t0, c0 = time.perf_counter(), _child_cpu()
    out = subprocess.run(["/usr/sbin/pflogsumm", "--detail", "0", str(path)], capture_output=True, text=True,
                         check=True).stdout
    took, cpu = time.perf_counter() - t0, _child_cpu() - c0
    return parse_pflogsumm(out), took, cpu


def parse_pflogsumm(out: str) -> dict[str, int]:
    """pflogsumm's Grand Totals. Above 512k it prints "1830k": then the exact figure is
    the sum of its Per-Day Traffic Summary column (printed for logs of more than a day)."""
    totals: dict[str, int] = {}
    for key, rx in _PFL.items():
        m = re.search(rx, out, re.M)
        totals[key] = int(m.group(1)) if m and not m.group(2) else -1
    columns = {"delivered": 1, "bounced": 3, "rejected": 4}
    rows = re.findall(r"^    [A-Z][a-z]{2} [ \d]\d \d{4}((?:\s+\d+[ km]?){5})$", out, re.M)
    for key, col in columns.items():
        if totals[key] < 0 and rows:
            cells = [r.split() for r in rows]
            if all(c[col].isdigit() for c in cells):
                totals[key] = sum(int(c[col]) for c in cells)
    return totals




def ours(path: Path) -> tuple[dict[str, int], float, float, float]:
    """Totals, wall seconds, CPU seconds and peak RSS (MB) of our reader, in a child
    process so the RSS is ours alone. Start-up (imports, knowledge files) is included."""
    code = (
        "import time; t0=time.perf_counter(); c0=time.process_time()\n"
        "import json,resource,sys\n"
        "from handlers.logs import analyse_logs\n"
        "r=analyse_logs([sys.argv[1]]); d=r.to_dict()\n"
        "took=time.perf_counter()-t0; cpu=time.process_time()-c0\n"
        "print(json.dumps({'totals':d['totals'],'took':took,'cpu':cpu,"
        "'rss':resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    import json

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, cwd=root)
    data = json.loads(out.stdout)
    return data["totals"], data["took"], data["cpu"], data["rss"] / 1024.0


def _size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not m:
        raise argparse.ArgumentTypeError("size like 1G, 200M or 5000000")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=_size, default=1 << 30, help="log size (default 1G)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mail.log"
        t0 = time.perf_counter()
        msgs = generate(path, args.size)
        size = path.stat().st_size
        print(f"generated {size / 1e6:.0f} MB, {msgs} messages in {time.perf_counter() - t0:.0f}s")
        pt, ptook, pcpu = pflogsumm_totals(path)
        ot, otook, ocpu, rss = ours(path)
    mb = size / 1e6
    print(f"pflogsumm: {ptook:7.1f}s wall {mb / ptook:6.1f} MB/s | {pcpu:7.1f}s CPU {mb / pcpu:6.1f} MB/s  {pt}")
    print(f"mailcheck: {otook:7.1f}s wall {mb / otook:6.1f} MB/s | {ocpu:7.1f}s CPU {mb / ocpu:6.1f} MB/s  "
          f"{ {k: ot[k] for k in ('delivered', 'deferred', 'bounced', 'rejected')} }")
    print(f"throughput ratio (mailcheck / pflogsumm): {ptook / otook:.2f}x wall, {pcpu / ocpu:.2f}x CPU   "
          f"peak RSS: {rss:.0f} MB")
    agree = all(pt[k] == ot[k] for k in ("delivered", "deferred", "bounced", "rejected"))
    print("totals agree" if agree else "TOTALS DIFFER")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
