"""What the log says, counted: totals as pflogsumm counts them, per provider, per hour,
and per message (queue ID) timelines.

Memory is bounded: a message's state is dropped when the MTA says it is finished
(Postfix ``removed``, Exim ``Completed``), per-message state is capped, and the
table of open messages is capped (the oldest is closed when it is full).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .classify import Verdict

MAX_OPEN = 100_000  # open messages tracked at once
MAX_EVENTS = 20  # timeline events kept per message
MAX_PENDING = 500  # recipients per message whose last attempt was a deferral
MAX_KEYS = 2000  # distinct providers/domains; the rest are counted as "other"
MAX_TIMELINES = 20  # example timelines of messages not delivered

OUTCOMES = ("delivered", "deferred", "bounced", "expired")


@dataclass
class ProviderStats:
    delivered: int = 0
    deferred: int = 0
    bounced: int = 0
    expired: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    remediation: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Outcomes by the IP family of the receiving host: {4: [ok, refused], 6: [ok, refused]}
    family: dict[int, list[int]] = field(default_factory=lambda: {4: [0, 0], 6: [0, 0]})
    family_reasons: dict[int, Counter[str]] = field(default_factory=lambda: {4: Counter(), 6: Counter()})
    sender_ips: Counter[str] = field(default_factory=Counter)
    first_failure: float | None = None

    @property
    def attempts(self) -> int:
        return self.delivered + self.deferred + self.bounced


class Message:
    __slots__ = ("continued", "counted", "done", "events", "first", "outcome", "pending", "qid")

    def __init__(self, qid: str, first: float, continued: bool = False) -> None:
        self.qid = qid
        self.first = first
        self.events: list[tuple[float, str, str, str, str]] = []  # time, status, rcpt, provider, reason
        self.pending: dict[str, str] = {}  # recipient -> provider of its last deferral
        self.outcome = ""  # worst final outcome so far
        self.continued = continued  # re-queued by a content filter: same message, new queue ID
        self.done = False
        self.counted = False  # had a delivery attempt: counted in `messages`


# The open-table entry of a message whose only history is fast-path deliveries.
SENT_ONLY = Message("", 0.0)
_RANK = {"": 0, "delivered": 1, "deferred": 2, "bounced": 3, "expired": 4}


@dataclass
class Tally:
    start: float | None = None
    end: float | None = None
    # pflogsumm's totals: delivered/bounced per recipient line, deferred = distinct queue IDs
    # with a deferral ("deferred" in its summary), deferrals = deferral lines.
    delivered: int = 0
    deferred: int = 0
    deferrals: int = 0
    bounced: int = 0
    expired: int = 0
    rejected: int = 0
    forwarded: int = 0
    messages: int = 0
    deferred_qids: set[str] = field(default_factory=set)
    providers: dict[str, ProviderStats] = field(default_factory=dict)
    hours: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    hour_reasons: dict[tuple[int, str], Counter[str]] = field(default_factory=dict)
    open: dict[str, Message] = field(default_factory=dict)
    message_outcomes: Counter[str] = field(default_factory=Counter)
    timelines: list[dict[str, Any]] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    connect_failures: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    tls_failures: Counter[str] = field(default_factory=Counter)
    tls_examples: dict[str, str] = field(default_factory=dict)
    not_found: Counter[str] = field(default_factory=Counter)
    microsoft_consumer: Counter[str] = field(default_factory=Counter)

    # -- time ---------------------------------------------------------------
    def seen(self, epoch: float) -> None:
        if self.start is None or epoch < self.start:
            self.start = epoch
        if self.end is None or epoch > self.end:
            self.end = epoch

    # -- messages -----------------------------------------------------------
    def message(self, qid: str, epoch: float, *, continued: bool = False) -> Message:
        msg = self.open.get(qid)
        if msg is None:
            if len(self.open) >= MAX_OPEN:
                self.close(next(iter(self.open)))
            msg = self.open[qid] = Message(qid, epoch, continued)
        elif msg is SENT_ONLY:
            msg = self.open[qid] = Message(qid, epoch)
            msg.counted, msg.outcome = True, "delivered"
        return msg

    def sent_only(self, qid: str) -> None:
        """A delivery seen on the fast path for a message with no other history: no
        per-message object until something else happens to it."""
        msg = self.open.get(qid)
        if msg is None:
            if len(self.open) >= MAX_OPEN:
                self.close(next(iter(self.open)))
            self.open[qid] = SENT_ONLY
            self.messages += 1
        elif msg is not SENT_ONLY:
            if not msg.counted:
                msg.counted = True
                self.messages += not msg.continued
            if not msg.outcome:
                msg.outcome = "delivered"

    def handed_to_filter(self, qid: str, new_qid: str, epoch: float) -> None:
        old = self.open.get(qid)
        new = self.message(new_qid, epoch, continued=True)
        if old is not None:
            new.events = old.events  # one timeline across the content filter
            new.counted = old.counted
            old.done = True

    def close(self, qid: str) -> None:
        msg = self.open.pop(qid, None)
        if msg is SENT_ONLY:
            self.message_outcomes["delivered"] += 1
            return
        if msg is None or msg.done or not msg.counted:
            return
        outcome = msg.outcome
        if msg.pending and _RANK[outcome] < _RANK["deferred"]:
            outcome = "deferred"
        self.message_outcomes[outcome or "deferred"] += 1
        if outcome != "delivered" and msg.events and len(self.timelines) < MAX_TIMELINES:
            self.timelines.append({
                "queue_id": qid,
                "outcome": outcome,
                "events": [
                    {"time": t, "status": s, "recipient": r, "provider": p, "reason": why}
                    for t, s, r, p, why in msg.events
                ],
            })

    def finish(self) -> None:
        for qid in list(self.open):
            self.close(qid)

    # -- outcomes -----------------------------------------------------------
    def provider(self, key: str) -> ProviderStats:
        ps = self.providers.get(key)
        if ps is None:
            if len(self.providers) >= MAX_KEYS:
                key = "other"
                ps = self.providers.get(key)
            if ps is None:
                ps = self.providers[key] = ProviderStats()
        return ps

    def attempt(self, epoch: float, qid: str, rcpt: str, outcome: str, key: str, verdict: Verdict,
                family: int, example: str) -> None:
        """One recipient's delivery attempt (delivered / deferred / bounced)."""
        ps = self.provider(key)
        setattr(ps, outcome, getattr(ps, outcome) + 1)
        failed = outcome != "delivered"
        if failed:
            ps.reasons[verdict.reason] += 1
            if verdict.reason not in ps.examples:
                ps.examples[verdict.reason] = example
                ps.remediation[verdict.reason] = verdict.remediation
            if ps.first_failure is None:
                ps.first_failure = epoch
        if family in (4, 6):
            ps.family[family][1 if failed else 0] += 1
            if failed:
                ps.family_reasons[family][verdict.reason] += 1
        if verdict.sender_ip:
            ps.sender_ips[verdict.sender_ip] += 1
        hour = int(epoch // 3600)
        row = self.hours.setdefault(hour, {}).setdefault(key, [0, 0, 0, 0])
        row[OUTCOMES.index(outcome)] += 1
        if failed:
            self.hour_reasons.setdefault((hour, key), Counter())[verdict.reason] += 1
        msg = self.message(qid, epoch)
        if not msg.counted:
            msg.counted = True
            self.messages += not msg.continued
        if len(msg.events) < MAX_EVENTS:
            msg.events.append((epoch, outcome, rcpt, key, verdict.reason))
        if outcome == "deferred":
            if len(msg.pending) < MAX_PENDING or rcpt in msg.pending:
                msg.pending[rcpt] = key
        else:
            msg.pending.pop(rcpt, None)
            if _RANK[outcome] > _RANK[msg.outcome]:
                msg.outcome = outcome

    def expire(self, epoch: float, qid: str) -> None:
        """The queue lifetime ran out: each recipient still deferred expired (at its provider)."""
        self.expired += 1
        msg = self.message(qid, epoch)
        if not msg.counted:
            msg.counted = True
            self.messages += not msg.continued
        for rcpt, key in list(msg.pending.items())[:MAX_PENDING]:
            ps = self.provider(key)
            ps.expired += 1
            hour = int(epoch // 3600)
            self.hours.setdefault(hour, {}).setdefault(key, [0, 0, 0, 0])[3] += 1
            if len(msg.events) < MAX_EVENTS:
                msg.events.append((epoch, "expired", rcpt, key, "expired"))
        if not msg.pending and len(msg.events) < MAX_EVENTS:
            msg.events.append((epoch, "expired", "", "", "expired"))
        msg.pending.clear()
        msg.outcome = "expired"


def ip_family(ip: str) -> int:
    if not ip:
        return 0
    if ":" in ip:
        try:
            return ipaddress.ip_address(ip.removeprefix("ipv6:")).version
        except ValueError:
            return 0
    return 4 if ip[:1].isdigit() else 0
