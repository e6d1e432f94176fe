"""analyse_bounce(): any pasted or uploaded bounce -> Report(kind="bounce").

Pure CPU, synchronous, no network, never raises: bad input gives a Report
with no bounces and a note saying why.
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any

from handlers.model import BounceRecord, Finding, Report
from knowledge.bounce import BounceKnowledge, CompiledProvider, ProviderRule, load

from .extract import Extractor
from .fact import Fact
from .notice import Notice, looks_like_message, parse_message
from .provider import detect, find_rule
from .reason import ReasonFinder
from .scan import is_masked_address, remote_words, reply_part, sender_ip_in
from .ses import ses_facts
from .smtp import LINE_PREFIX_RE, find_reply, find_status, prefer_status, squeeze
from .textin import cap, decode_bytes, human_size, unslack


class _Engine:
    def __init__(self, kb: BounceKnowledge) -> None:
        self.kb = kb
        self.ex = Extractor(kb)
        self.reasons = ReasonFinder(kb)

    # ----------------------------------------------------------- extraction
    def facts(self, data: bytes | str, report: Report) -> tuple[list[Fact], str, Notice | None]:
        parts = split_mbox(data)
        if len(parts) > 1:
            # An mbox file (several messages, each after a "From sender date" line).
            out: list[Fact] = []
            first: Notice | None = None
            for part in parts:
                facts, _, notice = self.one(part, report)
                out += facts
                first = first or notice
            return out, "mbox", first
        return self.one(data, report)

    def one(self, data: bytes | str, report: Report) -> tuple[list[Fact], str, Notice | None]:
        text = data if isinstance(data, str) else decode_bytes(data)
        if "&lt;" in text or "&gt;" in text or "<mailto:" in text or "|" in text:
            text = unslack(text)
            if isinstance(data, bytes):
                # Slack's markup is ASCII: undo it on the bytes (latin-1 maps 1:1), so each
                # MIME part is still decoded by its own charset, not by a guess for the whole.
                data = unslack(data.decode("latin-1")).encode("latin-1")
        if isinstance(data, str):
            data = unslack(data) if data is not text else text
        if looks_like_message(text):
            notice = parse_message(data, self.kb.formats.original_message_markers)
            report.notes.extend(notice.notes)
            return self._from_notice(notice, text), "message", notice
        # Not a whole message: log lines, a DSN fragment, a bare reply or a human part.
        logs = self.ex.from_logs(text)
        if logs:
            return logs, "log", None
        ses = ses_facts(text)
        if ses:
            return ses, "amazon-ses", None
        dsn = self.ex.fragment_dsn(text)
        notice = Notice(human=text)
        if dsn:
            return self.ex.from_dsn(notice, dsn), "dsn-fragment", notice
        first = next((ln for ln in text.splitlines()[:50] if ln.strip()), "")
        if LINE_PREFIX_RE.match(first):
            facts = self.ex.from_reply_lines(text)
            if facts:
                return facts, "smtp-reply", notice
        facts = self.ex.from_text(notice, text, require_code=True)
        if facts:
            return facts, "text", notice
        return self.ex.from_reply_lines(text), "smtp-reply", notice

    def _from_notice(self, n: Notice, raw: str) -> list[Fact]:
        ses = ses_facts(n.human)
        if ses:
            return ses
        ctype = n.header("content-type").lower()
        subj = n.header("subject").lower()
        if n.original and any(s in subj for s in self.kb.formats.feedback_subjects):
            n.feedback = n.feedback or {}
        if n.feedback is not None or "feedback-report" in ctype:
            return self.ex.from_feedback(n, raw)
        if n.per_recipient:
            return self.ex.from_dsn(n, n.per_recipient)
        if not self.ex.is_bounce_notice(n):
            auto = self.ex.autoreply(n)
            if auto:
                return auto
            logs = self.ex.from_logs(n.human)
            if logs:
                return logs
            # A forwarded/pasted message whose body is a bounce text still counts,
            # but only with an SMTP code in it.
            return self.ex.from_text(n, n.human, require_code=True)
        facts = self.ex.from_text(n, n.human, require_code=False)
        if not facts and (n.per_message or "report" in ctype):
            facts = self.ex.unreadable_report(n)
        verdict = next((r for p, r in self.kb.formats.subject_reasons.items() if subj.startswith(p)), "")
        for f in facts:
            if verdict and not (f.reason or f.status or f.reply_code or f.extra.get("mta_verdict")):
                f.extra["subject_verdict"] = verdict
        return facts

    # -------------------------------------------------------------- finishing
    def finish(self, f: Fact, lang: str) -> BounceRecord:
        diag = squeeze(f.diagnostic)
        in_text = find_status(reply_part(diag)) or find_status(diag)
        if f.status and not f.status[0].isdigit():
            f.status = None
        f.status = (
            prefer_status(f.status, in_text, f.reply_code)
            if f.source != "postfix-log"
            else (f.status or in_text)
        )
        if f.reply_code is not None and f.status and str(f.reply_code)[0] != f.status[0]:
            alt = find_reply(reply_part(diag), f.status)
            f.reply_code = alt
        if f.reply_code is None and diag:
            f.reply_code = find_reply(reply_part(diag), f.status)
        provider = detect(self.kb, f)
        rule = find_rule(provider, f)
        reason = self.reasons.find(f, rule)
        if reason in ("onhold", "undefined") and f.extra.get("subject_verdict"):
            reason = str(f.extra["subject_verdict"])  # the text named nothing; the subject did
        if not f.sender_ip:
            f.sender_ip = sender_ip_in(reply_part(diag), f.remote_ip)
        if is_masked_address(f.recipient):
            f.extra["recipient_masked"] = True
        rec = BounceRecord(
            recipient=f.recipient,
            status=f.status,
            reply_code=f.reply_code,
            reason=reason,
            provider=provider.id if provider else None,
            hard=self.hard(reason, f),
            remote_host=f.remote_host,
            remote_ip=f.remote_ip,
            sender_ip=f.sender_ip,
            diagnostic=remote_words(diag),
            sender=f.sender,
            action=f.action or None,
            source=f.source,
            extra={
                k: v
                for k, v in f.extra.items()
                if v is not None and k not in ("mta_verdict", "subject_verdict", "permanent")
            },
        )
        if f.command:
            rec.extra["smtp_command"] = f.command
        if self.kb.reasons[reason].failure:
            rec.permanent = self.final(f, reason)
        if rule is not None and rule.source:
            rec.extra["rule_source"] = rule.source
        rec.remediation = self.remediation(reason, provider, rule, f)
        rec.explanations = {code: self.explain(rec, provider, rule, f, code) for code in ("en", "ja")}
        rec.explanation = rec.explanations[lang]
        return rec

    def final(self, f: Fact, reason: str = "") -> bool | None:
        """Is this recipient's delivery over (True), still being retried (False), or unknown?

        RFC 3464 §2.3.3: Action "failed" means the message could not be delivered and
        will not be retried, even when the last reply was a 4xx (Postfix and Exim give up
        after the queue lifetime); "delayed" means it is still queued. Then the notice's
        own words: a delay warning says it is one ("will be retried", "this is a warning
        message only") and is not final even when it names the time spent so far ("could
        not be delivered for more than 4 hours"); a queue that gave up ("in the queue too
        long", "giving up on", reason `expired`) is final whatever its last reply's class.
        Then the reply class (5xx final, 4xx temporary). A notice with no code at all is
        final: MTAs mail one back when they give up.
        """
        if f.action == "delayed":
            return False
        if f.action in ("failed", "expired"):
            return True
        words = (f.context or f.diagnostic)[:4000].lower()
        fm = self.kb.formats
        if any(m in words for m in fm.delayed_markers):
            return False
        if reason == "expired" or any(m in words for m in fm.expired_markers):
            return True
        by_code = _permanent(f)
        if by_code is not None:
            return by_code
        if f.source in ("dsn", "text"):
            return True
        return None

    def hard(self, reason: str, f: Fact) -> bool:
        """Is the address itself dead (stop mailing it)? The reason's record says (`hard`)."""
        record = self.kb.reasons[reason]
        return record.address_dead(_permanent(f) if record.hard == "if_permanent" else None)

    def remediation(
        self, reason: str, provider: CompiledProvider | None, rule: ProviderRule | None, f: Fact
    ) -> list[str]:
        ids = [f"bounce.{reason}"]
        if rule is not None:
            ids += rule.remediation
        ids += self.kb.reasons[reason].also_shown
        if reason == "delivered":
            if provider is not None:
                ids += provider.spec.delivered_remediation
        elif provider is not None:
            ids += provider.spec.remediation
        if reason in ("requireptr", "norelaying", "blocked") and (
            _is_v6(f.sender_ip) or f.extra.get("sender_ip_version") == 6
        ):
            ids += ["ptr.set_reverse_dns", "postfix.ipv4_only_smtp"]
        out: list[str] = []
        for i in ids:
            if i not in out:
                out.append(i)
        return out

    def explain(
        self,
        rec: BounceRecord,
        provider: CompiledProvider | None,
        rule: ProviderRule | None,
        f: Fact,
        lang: str,
    ) -> str:
        ex = self.kb.explanations
        record = self.kb.reasons[rec.reason]
        parts = [record.meaning.get(lang)]
        who = provider.spec.name if provider else (rec.remote_host or "")
        if record.failure and who:
            parts.append(
                ("回答したのは " + who + " です。") if lang == "ja" else f"The reply came from {who}."
            )
        if rule is not None and rule.note:
            parts.append(rule.note_ja if lang == "ja" and rule.note_ja else rule.note)
        if rec.extra.get("recipient_masked"):
            parts.append(_say(ex.recipient_masked, lang))
        v6 = rec.sender_ip if _is_v6(rec.sender_ip) else None
        if v6 is None and rec.extra.get("sender_ip_version") == 6:
            v6 = str(rec.extra.get("sender_ip_masked") or "")
        if v6 and rec.reason not in ("delivered", "vacation", "feedback"):
            parts.append(_say(ex.sender_ipv6, lang).format(ip=v6))
        if rec.reason == "delivered":
            note = ex.delivered_note
            parts.append((note.ja or note.en) if lang == "ja" else note.en)
        if rec.reason == "expired" or rec.action == "delayed":
            if rec.action == "delayed":
                parts.append(
                    "配送は遅延中で、まだ再試行されます。"
                    if lang == "ja"
                    else "Delivery is delayed and will be retried."
                )
        detail = f.extra.get("delays_detail")
        if isinstance(detail, dict):
            tmpl = ex.delays.ja if (lang == "ja" and ex.delays.ja) else ex.delays.en
            parts.append(
                tmpl.format(
                    delays=f.extra.get("delays", ""),
                    a=detail["before_queue"],
                    b=detail["in_queue"],
                    c=detail["connection_setup"],
                    d=detail["transmission"],
                )
            )
            parts.append(_delays_hint(detail, lang))
        return " ".join(p for p in parts if p)


def _say(text: Any, lang: str) -> str:
    return str((text.ja or text.en) if lang == "ja" else text.en)


def _delays_hint(d: dict[str, float], lang: str) -> str:
    # postconf(5): a large b = local queue backlog; c = DNS/TCP/greeting/TLS at the remote;
    # d = slow remote after MAIL FROM (content scanning, tarpitting).
    worst = max(("in_queue", "connection_setup", "transmission"), key=lambda k: d[k])
    if d[worst] < 5:
        return ""
    hints = {
        "in_queue": (
            "Most time was spent waiting in the local queue (backlog on this server).",
            "大半の時間はローカルのキュー待ちでした（このサーバーの滞留）。",
        ),
        "connection_setup": (
            "Most time was spent setting up the connection: DNS, TCP, the remote greeting or TLS.",
            "大半の時間は接続確立（DNS・TCP・相手のグリーティング・TLS）でした。",
        ),
        "transmission": (
            "Most time was spent after MAIL FROM: the remote server was slow to accept the message (content scanning or tarpitting).",
            "大半の時間は MAIL FROM 以降でした。相手サーバーの受け取りが遅い（内容検査やターピット）状態です。",
        ),
    }
    en, ja = hints[worst]
    return ja if lang == "ja" else en


def _permanent(f: Fact) -> bool | None:
    """True for a 5xx failure, False for 4xx / delayed, None when nothing says."""
    if f.action == "delayed":
        return False
    code = f.status or (str(f.reply_code) if f.reply_code else "")
    if code[:1] in ("4", "5"):
        return code[0] == "5"
    return None


_MBOX_FROM = re.compile(
    r"From \S{1,320} {1,3}(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
)
_MAX_MBOX_MESSAGES = 50


def split_mbox(data: bytes | str) -> list[bytes | str]:
    """Split an mbox (messages separated by "From sender Www Mmm dd ..." lines) into messages.

    A separator counts only at the start of a line, in mbox's own shape ("From addr  Thu Jul
    2 ..."), and only when a header line follows it, so a quoted "From " line in a body does
    not split a message.
    """
    text = data.decode("latin-1") if isinstance(data, bytes) else data  # 1:1 offsets
    cuts: list[int] = []
    pos = 0
    n = len(text)
    while pos < n and len(cuts) <= _MAX_MBOX_MESSAGES:
        if text.startswith("From ", pos) and (pos == 0 or text[pos - 1] == "\n"):
            eol = text.find("\n", pos)
            nxt = text[eol + 1 : eol + 80] if eol >= 0 else ""
            if eol >= 0 and _MBOX_FROM.match(text, pos, eol) and _HEADER_START.match(nxt):
                cuts.append(pos)
        nl = text.find("\nFrom ", pos)
        if nl < 0:
            break
        pos = nl + 1
    if len(cuts) < 2:
        return [data]
    bounds = [*cuts[1:], n]
    if cuts[0] > 0 and text[: cuts[0]].strip():
        cuts, bounds = [0, *cuts], [cuts[0], *bounds]
    return [data[a:b] for a, b in zip(cuts, bounds, strict=True)]


_HEADER_START = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,60}:")


def _is_v6(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        return ipaddress.ip_address(ip).version == 6
    except ValueError:
        return False


def _subject(report: Report, notice: Notice | None, fmt: str) -> str:
    if report.bounces:
        first = report.bounces[0]
        who = first.recipient or "(recipient not named)"
        more = f" (+{len(report.bounces) - 1} more)" if len(report.bounces) > 1 else ""
        return f"{who}: {first.reason}{more}"
    if notice is not None and notice.header("subject"):
        return notice.header("subject")[:200]
    return "bounce"


def analyse(data: bytes | str | None, lang: str = "en") -> Report:
    started = time.monotonic()
    lang = "ja" if lang == "ja" else "en"
    report = Report(kind="bounce", subject="bounce", lang=lang)
    try:
        kb = load()
    except Exception as exc:  # broken knowledge files: say so, don't crash the bot
        report.notes.append(f"Bounce knowledge could not be loaded: {type(exc).__name__}")
        return report
    ex = kb.explanations
    try:
        if data is None:
            data = ""
        if not isinstance(data, bytes | str):
            data = str(data)
        data, truncated = cap(data)
        if truncated:
            msg = (ex.truncated.ja if lang == "ja" else ex.truncated.en).format(limit=human_size(len(data)))
            report.notes.append(msg)
            report.add(Finding(code="bounce.input_truncated", severity="warning", title=msg, check="bounce"))
        engine = _engine(kb)
        facts, fmt, notice = engine.facts(data, report)
        report.details["format"] = fmt
        for f in facts[:500]:
            report.bounces.append(engine.finish(f, lang))
        if len(facts) > 500:
            report.notes.append(f"Only the first 500 of {len(facts)} recipients are shown.")
        report.subject = _subject(report, notice, fmt)
        _findings(report, kb)
    except Exception as exc:  # never raise on any input
        report.bounces = []
        report.notes.append(f"The input could not be analysed ({type(exc).__name__}).")
    if not report.bounces:
        msg = ex.not_a_bounce.ja if lang == "ja" else ex.not_a_bounce.en
        report.notes.append(msg)
        report.add(Finding(code="bounce.not_a_bounce", severity="info", title=msg, check="bounce"))
    report.duration_ms = int((time.monotonic() - started) * 1000)
    return report


def _findings(report: Report, kb: BounceKnowledge) -> None:
    reasons = kb.reasons
    for b in report.bounces:
        severity: Any = reasons[b.reason].severity or ("critical" if (b.hard or b.permanent) else "warning")
        who = b.recipient or "recipient"
        title = f"{who}: {b.reason}" + (f" ({b.status})" if b.status else "")
        report.add(
            Finding(
                code=f"bounce.{b.reason}",
                severity=severity,
                title=title,
                detail=b.explanation,
                evidence={
                    k: v
                    for k, v in (
                        ("status", b.status),
                        ("reply_code", b.reply_code),
                        ("provider", b.provider),
                        ("remote_host", b.remote_host),
                        ("diagnostic", b.diagnostic[:500]),
                    )
                    if v
                },
                remediation=list(b.remediation),
                check="bounce",
            )
        )


_ENGINES: dict[int, _Engine] = {}


def _engine(kb: BounceKnowledge) -> _Engine:
    eng = _ENGINES.get(id(kb))
    if eng is None:
        eng = _ENGINES[id(kb)] = _Engine(kb)
    return eng


def classify_log_line(line: str, lang: str = "en") -> BounceRecord | None:
    """One MTA log delivery line -> its BounceRecord (provider, reason, remediation), or None.

    The log reader (handlers/logs) calls this once per distinct reply, so a whole log is
    judged by the same rules as a pasted line."""
    kb = load()
    engine = _engine(kb)
    facts = engine.ex.from_logs(line)
    return engine.finish(facts[0], lang) if facts else None
