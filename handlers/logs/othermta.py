"""Exim main log and Sendmail lines -> Tally updates.

Exim (spec.txt "Log files"): ``<=`` arrival, ``=>`` delivery, ``->`` further delivery in the
same connection, ``==`` deferral, ``**`` failure, ``Completed`` end of the message;
``rejected RCPT``/``rejected after DATA`` are inbound rejects. A ``**`` with "retry timeout
exceeded" is the queue lifetime running out (expired).
Sendmail: ``to=..., stat=Sent|Deferred|<error>`` per recipient; ``ruleset=... reject=`` is
an inbound reject; a DSN "Cannot send message for N days" is the queue lifetime.
"""

from __future__ import annotations

import re

from .classify import Classifier
from .findings_scan import scan_failure_text
from .tally import Tally, ip_family

_EXIM = re.compile(r"([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (=>|->|==|\*\*|<=|Completed)(?: (\S+))?(.*)$")
_EXIM_HOST = re.compile(r" H=\(?([^\s\]\[()]{1,255})\)? \[([0-9A-Fa-f:.]{2,45})\]")
_SENDMAIL = re.compile(r"(?:sendmail|sm-mta|sm-msp-queue)\[\d+\]: ([0-9A-Za-z]{6,24}): (.*)$")
_SM_TO = re.compile(r"to=([^,]*),.*?stat=(\S+)(.*)$")
_SM_RELAY = re.compile(r"relay=([^\s,\[]*)\.? ?(?:\[([0-9A-Fa-f:.]+)\])?")


class EximReader:
    def __init__(self, tally: Tally, classifier: Classifier) -> None:
        self.t = tally
        self.c = classifier

    def feed(self, epoch: float, rest: str, line: str) -> bool:
        m = _EXIM.match(rest)
        t = self.t
        if m is None:
            if " rejected " in rest and (" H=" in rest or rest.startswith("H=")):
                t.seen(epoch)
                t.rejected += 1
                t.rejects["exim"] += 1
                return True
            return False
        t.seen(epoch)
        mid, flag, addr, tail = m.group(1), m.group(2), (m.group(3) or "").strip("<>:"), m.group(4)
        if flag == "Completed":
            t.close(mid)
            return True
        if flag == "<=":
            return True
        hm = _EXIM_HOST.search(tail)
        host, ip = (hm.group(1).lower(), hm.group(2)) if hm else ("", "")
        domain = addr.rpartition("@")[2].lower()
        if flag in ("=>", "->"):
            outcome = "delivered"
            t.delivered += 1
        elif flag == "==":
            outcome = "deferred"
            t.deferrals += 1
            if mid not in t.deferred_qids:
                t.deferred_qids.add(mid)
                t.deferred += 1
        else:
            if "retry timeout exceeded" in tail or "retry time not reached for any host after a long failure period" in tail:
                t.message(mid, epoch).pending.setdefault(addr, "")
                self._expire(epoch, mid, addr, host, domain, line)
                return True
            outcome = "bounced"
            t.bounced += 1
        if outcome == "delivered" and (" T=local" in tail or " R=local" in tail or not host):
            key = "local"
            verdict = self.c.classify(line, "sent", key, "", "", "")
            t.attempt(epoch, mid, addr, outcome, key, verdict, 0, "")
            return True
        word = {"delivered": "sent", "deferred": "deferred", "bounced": "bounced"}[outcome]
        verdict = self.c.classify(line, word, host, domain, str(ip_family(ip)), tail)
        key = verdict.provider or domain or host or "local"
        t.attempt(epoch, mid, addr, outcome, key, verdict, ip_family(ip), verdict.diagnostic or tail.strip())
        if outcome != "delivered":
            scan_failure_text(t, tail, domain or host)
        return True

    def _expire(self, epoch: float, mid: str, addr: str, host: str, domain: str, line: str) -> None:
        verdict = self.c.classify(line, "bounced", host, domain, "", "expired")
        msg = self.t.message(mid, epoch)
        msg.pending[addr] = verdict.provider or domain or host or "local"
        self.t.expire(epoch, mid)


class SendmailReader:
    def __init__(self, tally: Tally, classifier: Classifier) -> None:
        self.t = tally
        self.c = classifier

    def feed(self, epoch: float, rest: str, line: str) -> bool:
        if not rest.startswith(("sendmail[", "sm-mta[", "sm-msp-queue[")):
            return False
        m = _SENDMAIL.match(rest)
        t = self.t
        t.seen(epoch)
        if m is None:
            return True
        qid, body = m.group(1), m.group(2)
        if "reject=" in body and "ruleset=" in body:
            t.rejected += 1
            t.rejects["sendmail"] += 1
            return True
        if "DSN: Cannot send message for" in body or "DSN: Warning: could not send message for past" in body:
            if "Warning" not in body:
                t.expire(epoch, qid)
            return True
        if body.startswith("to=") and "stat=" in body:
            tm = _SM_TO.match(body)
            if tm is not None:
                self._delivery(epoch, qid, tm, body, line)
        return True

    def _delivery(self, epoch: float, qid: str, tm: re.Match[str], body: str, line: str) -> None:
        t = self.t
        stat = tm.group(2).lower()
        rm = _SM_RELAY.search(body)
        host = rm.group(1).lower() if rm else ""
        ip = (rm.group(2) or "") if rm else ""
        if "mailer=local" in body or "mailer=prog" in body:
            host = "local"
        for rcpt in (r.strip().strip("<>") for r in tm.group(1).split(",") if r.strip()):
            domain = rcpt.rpartition("@")[2].lower()
            if stat == "sent":
                outcome, word = "delivered", "sent"
                t.delivered += 1
            elif stat == "deferred:" or stat == "deferred":
                outcome, word = "deferred", "deferred"
                t.deferrals += 1
                if qid not in t.deferred_qids:
                    t.deferred_qids.add(qid)
                    t.deferred += 1
            else:
                outcome, word = "bounced", "bounced"
                t.bounced += 1
            if host == "local":
                t.attempt(epoch, qid, rcpt, outcome, "local", self.c.classify(line, word, "local", "", "", ""), 0, "")
                continue
            verdict = self.c.classify(line, word, host, domain, str(ip_family(ip)), tm.group(3))
            key = verdict.provider or domain or host
            t.attempt(epoch, qid, rcpt, outcome, key, verdict, ip_family(ip), verdict.diagnostic or tm.group(3).strip())
            if outcome != "delivered":
                scan_failure_text(t, body, domain or host)
