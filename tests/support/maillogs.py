"""Postfix log text for the tests: a day of Gmail deliveries that starts being rate
limited at a given hour, with recipients' addresses in every line."""

from __future__ import annotations


def gmail_day(hours: range = range(8, 13), limited_from: int = 11, *, day: int = 4, prefix: str = "6") -> str:
    """20 deliveries an hour to gmail.com; from ``limited_from`` every second one is
    deferred with Gmail's 421 4.7.28 rate limit."""
    lines = []
    n = 0
    for hour in hours:
        for i in range(20):
            n += 1
            qid = f"{prefix}{day:02d}{hour:02d}{i:02d}ABCDE"
            ts = f"Dec {day:2d} {hour:02d}:{i * 2:02d}:00"
            if hour >= limited_from and i % 2 == 0:
                status = ("dsn=4.7.28, status=deferred (host gmail-smtp-in.l.google.com[142.250.4.27] said: 421-4.7.28 "
                          "Gmail has detected an unusual rate of unsolicited mail. To protect "
                          "our users from spam, mail has been temporarily rate limited. 421 4.7.28  "
                          "https://support.google.com/mail/?p=UnsolicitedRateLimitError a1si1 - gsmtp (in reply to "
                          "end of DATA command))")
            else:
                status = "dsn=2.0.0, status=sent (250 2.0.0 OK  1733302802 a1si2 - gsmtp)"
            lines.append(f"{ts} mta postfix/smtp[900]: {qid}: to=<alice.u{n}@gmail.com>, "
                         f"relay=gmail-smtp-in.l.google.com[142.250.4.27]:25, delay=0.9, delays=0.1/0/0.4/0.4, "
                         f"{status}\n")
            lines.append(f"{ts} mta postfix/qmgr[901]: {qid}: removed\n")
    return "".join(lines)


def yahoo_bounces(hour: int = 14, count: int = 3, *, day: int = 4) -> str:
    """``count`` bounces from Yahoo (a dead mailbox) in one hour."""
    lines = []
    for i in range(count):
        qid = f"7{day:02d}{hour:02d}{i:02d}YAHOO"
        ts = f"Dec {day:2d} {hour:02d}:{i:02d}:30"
        lines.append(f"{ts} mta postfix/smtp[910]: {qid}: to=<bob.y{i}@yahoo.com>, relay=mta5.am0.yahoodns.net"
                     f"[67.195.204.72]:25, delay=1.1, delays=0.1/0/0.5/0.5, dsn=5.1.1, status=bounced (host "
                     f"mta5.am0.yahoodns.net[67.195.204.72] said: 554 5.1.1 <bob.y{i}@yahoo.com>: Recipient "
                     f"address rejected: Delivery error: dd This user doesn't have a yahoo.com account (in reply to "
                     f"end of DATA command))\n")
        lines.append(f"{ts} mta postfix/qmgr[901]: {qid}: removed\n")
    return "".join(lines)
