"""Postfix log lines -> Tally updates.

The totals follow pflogsumm 1.1.5 (Debian's /usr/sbin/pflogsumm) rule for rule, so the
two agree on the same file:
- a line counts only under the syslog name ``postfix`` (also ``postfix/smtps/...`` and
  ``postfix/submission/...``); the program is what follows up to ``[`` or ``:``;
- a delivery is ``to=<..>, [orig_to=<..>, ]relay=.., [conn_use=.., ]delay=.., [delays=.., ]
  [dsn=.., ]status=WORD``: ``sent`` is delivered (all relays, also content filters and
  ``relay=local``) except ``forwarded as`` (local forwarding), ``bounced`` is bounced,
  ``deferred`` counts one deferral per line and the message once per queue ID;
- rejected: smtpd/postscreen ``QID: reject:`` and cleanup ``reject:``/``milter-reject:``
  of a header, body or END-OF-MESSAGE (not ``reject_warning``).
Other syslog names (``postfix-out/smtp`` of a second instance) feed the per-provider view
only. ``qmgr`` ``status=expired`` is counted as expired (pflogsumm does not count it).
"""

from __future__ import annotations

import re
from collections import Counter

from .classify import Classifier, Verdict
from .findings_scan import scan_failure_text
from .tally import Tally, ip_family

_PROG = re.compile(r"(postfix[\w.\-]*)(?:/(?:smtps|submission))?/([^\[:]*).*?: ([^:\s]+)")
_DELIVERY = re.compile(
    r"to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?delay=([^,]+), "
    r"(?:delays=[^,]+, )?(?:dsn=([^,]+), )?status=(\S+)(.*)$"
)
_CLEANUP_REJECT = re.compile(r"/cleanup\[\d+\]: .*?\b((?:milter-)?reject|warning|hold|discard): (header|body|END-OF-MESSAGE) ")
_SMTPD_REJECT = re.compile(r"\[\d+\]: \w+: reject: ")
_RELAY = re.compile(r"([^\[\s]+)(?:\[([^\]]*)\])?(?::\d+)?")
_QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)\)?$")
_CONNECT = re.compile(r"connect to ([^\s\[]+)\[([^\]]+)\]:\d+: (.+)$")
_SOLARIS_ID = re.compile(r": \[ID \d+ [^\]]+\] ")
_LOCAL_RELAYS = frozenset({"local", "virtual", "dovecot", "maildrop", "procmail", "lmtp"})


class PostfixReader:
    def __init__(self, tally: Tally, classifier: Classifier) -> None:
        self.t = tally
        self.c = classifier

    def feed(self, epoch: float, rest: str, line: str) -> bool:
        if not rest.startswith("postfix"):
            return False
        if ": [ID " in rest:
            rest = _SOLARIS_ID.sub(": ", rest, count=1)
        m = _PROG.match(rest)
        if m is None:
            return False
        counted = m.group(1) == "postfix"  # pflogsumm's syslog name
        cmd, qid = m.group(2), m.group(3)
        t = self.t
        t.seen(epoch)
        if cmd == "cleanup" and "reject: " in rest:
            cm = _CLEANUP_REJECT.search(rest)
            if cm is not None and cm.group(1) in ("reject", "milter-reject"):
                t.rejected += counted
                t.rejects["cleanup " + cm.group(2)] += 1
            return True
        if qid == "reject":
            t.rejected += counted
            return True
        if qid in ("warning", "fatal", "panic", "reject_warning", "hold", "discard") or cmd == "master":
            if cmd == "smtp" and qid == "warning":
                scan_failure_text(t, rest, "")
            return True
        if cmd in ("smtpd", "postscreen"):
            if "reject: " in rest and _SMTPD_REJECT.search(rest):
                t.rejected += counted
                t.rejects[cmd] += 1
            return True
        if "to=<" in rest:
            dm = _DELIVERY.search(rest)
            if dm is not None:
                self._delivery(epoch, qid, dm, line, counted)
                return True
        if cmd == "qmgr":
            if rest.endswith(": removed"):
                t.close(qid)
            elif "status=expired" in rest:
                t.expire(epoch, qid)
            return True
        if cmd in ("smtp", "lmtp") and "connect to " in rest:
            cm2 = _CONNECT.search(rest)
            if cm2 is not None:
                t.connect_failures.setdefault((cm2.group(1).lower(), cm2.group(2)), _counter())[cm2.group(3)[:120]] += 1
            return True
        if cmd in ("smtp", "lmtp"):
            scan_failure_text(t, rest, "")
        return True

    def _delivery(self, epoch: float, qid: str, dm: re.Match[str], line: str, counted: bool) -> None:
        t = self.t
        rcpt, relay, dsn, word, tail = dm.group(1), dm.group(2), dm.group(4) or "", dm.group(5), dm.group(6)
        rm = _RELAY.match(relay)
        host = (rm.group(1) if rm else relay).lower().rstrip(".")
        ip = (rm.group(2) or "") if rm else ""
        domain = rcpt.rpartition("@")[2].lower()
        text = tail.strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        if word == "sent":
            if "forwarded as " in tail:
                t.forwarded += counted
                return
            t.delivered += counted
            outcome = "delivered"
        elif word == "deferred":
            t.deferrals += counted
            if counted and qid not in t.deferred_qids:
                t.deferred_qids.add(qid)
                t.deferred += 1
            outcome = "deferred"
        elif word == "bounced":
            t.bounced += counted
            outcome = "bounced"
        else:
            return  # deliverable/undeliverable (address verification), not a delivery
        family = ip_family(ip)
        filt = _content_filter(host, ip)
        if host in _LOCAL_RELAYS or filt or host.startswith("private/"):
            key = "content-filter" if filt else "local"
            verdict = self.c.classify(line, word, key, "", "", text) if outcome != "delivered" else _DELIVERED
            t.attempt(epoch, qid, rcpt, outcome, key, verdict, 0, text)
            if outcome == "delivered" and key == "content-filter":
                qm = _QUEUED_AS.search(text)
                if qm is not None:
                    t.handed_to_filter(qid, qm.group(1), epoch)
            return
        verdict = self.c.classify(line, word, host, domain, str(family), text)
        key = verdict.provider or domain or host
        t.attempt(epoch, qid, rcpt, outcome, key, verdict, family, verdict.diagnostic or text)
        if outcome == "delivered":
            if dsn.startswith("2") and verdict.provider == "microsoft" and _consumer(domain):
                t.microsoft_consumer[domain] += 1
        else:
            scan_failure_text(t, text, domain or host, connects=False)


def _counter() -> Counter[str]:
    return Counter()


def _content_filter(host: str, ip: str) -> bool:
    """A hand-off to a content filter on this host (amavis, a re-injecting smtpd):
    relay=127.0.0.1[127.0.0.1]:10024 or localhost[::1]:10025 -- a loopback address named
    by its address or as localhost, not a real MX that happens to resolve to loopback."""
    if not (ip.startswith("127.") or ip in ("::1", "ipv6:::1")):
        return False
    return host in ("localhost", "localhost.localdomain") or host == ip or host.replace("ipv6:", "") == ip


def _consumer(domain: str) -> bool:
    from .findings_scan import microsoft_consumer_domains

    return domain in microsoft_consumer_domains()


_DELIVERED = Verdict(provider=None, reason="delivered")


def record_sent(t: Tally, c: Classifier, epoch: float, line: str, domain: str, host: str, family: int,
                n: int) -> None:
    """Add ``n`` deliveries that share a destination (fastpath.py's bulk counts)."""
    verdict = c.classify(line, "sent", host, domain, str(family), "")
    key = verdict.provider or domain or host
    ps = t.provider(key)
    ps.delivered += n
    if family in (4, 6):
        ps.family[family][0] += n
    if verdict.sender_ip:
        ps.sender_ips[verdict.sender_ip] += n
    t.hours.setdefault(int(epoch // 3600), {}).setdefault(key, [0, 0, 0, 0])[0] += n
    if verdict.provider == "microsoft" and _consumer(domain):
        t.microsoft_consumer[domain] += n
