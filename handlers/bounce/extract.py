"""From a parsed notice (or a pasted fragment) to one Fact per recipient."""

from __future__ import annotations

import re

from knowledge.bounce import BounceKnowledge

from .fact import Fact
from .mta import exim, parse_log_lines, postfix, sendmail
from .notice import DsnBlock, Notice, parse_field_blocks
from .scan import (
    ADDR_RE,
    HumanText,
    clean_addr,
    fill_from_text,
    header_addrs,
    is_error_text,
    valid_ip,
)
from .smtp import LINE_PREFIX_RE, find_reply, find_status, join_reply_lines, squeeze
from .textin import clean_lines

# The address at the end of a DSN field ("rfc822; <user@example.com>"). Was the regex
# r"<?([^<>;\s]{1,320}@[^<>;\s]{1,255})>?\s*$": quadratic-times-320x255 backtracking
# on a long run of "@"; _addr_at_end() computes the same match in linear time.
_FIELD_DELIMS = re.compile(r"[<>;\s]")
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-apple-action")


def _addr_at_end(value: str) -> str | None:
    r"""What `<?([^<>;\s]{1,320}@[^<>;\s]{1,255})>?\s*$` would capture, without backtracking.

    The capture is the end of the last run of non-delimiters (before an optional
    '>'), from the leftmost start that leaves a local part of 1..320 and a
    domain of 1..255 characters around an '@'.
    """
    core = value.rstrip()
    if core.endswith(">"):
        core = core[:-1]
    token = _FIELD_DELIMS.split(core)[-1] if core else ""
    n = len(token)
    if n < 3:
        return None
    at = token.find("@", max(1, n - 256), n - 1)
    if at < 0:
        return None
    return token[max(0, at - 320) :]


def _rfc822_typed(value: str) -> bool:
    """A DSN recipient field of address type rfc822 (RFC 3464 2.3.2), or untyped."""
    kind, sep, _rest = value.partition(";")
    return bool(value.strip()) and (not sep or kind.strip().lower() in ("rfc822", "rfc 822"))


def _addr_of(value: str) -> str | None:
    value = value.strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    found = _addr_at_end(value.strip())
    if found:
        return found
    m2 = ADDR_RE.search(value)
    return m2.group(1) if m2 else (value.strip("<> ") or None)


_ROBOT_LOCALPARTS = ("postmaster", "mailer-daemon", "mailer_daemon", "root", "abuse", "noreply", "no-reply")


_REPLY_AT_START = re.compile(r"(?:^|said:|below:|error:)\s*[45][0-5]\d[ -]", re.IGNORECASE)


def _has_code(text: str) -> bool:
    """An enhanced status, or a reply where replies start: "size 450 KB" is no code."""
    return bool(find_status(text) or _REPLY_AT_START.search(text))


def _named_address(text: str, exclude: set[str]) -> str | None:
    for m in ADDR_RE.finditer(text[:4000]):
        addr = clean_addr(m.group(1)).lower()
        if addr in exclude or addr.split("@")[0] in _ROBOT_LOCALPARTS:
            continue
        return addr
    return None


_ADDRESS_ONLY = re.compile(r"[^\s<>()\[\]:;,]{1,64}@[^\s<>()\[\]:;,]{1,255}")


class Extractor:
    def __init__(self, kb: BounceKnowledge) -> None:
        self.kb = kb
        self.formats = kb.formats
        self.ht = HumanText(kb.formats)

    # ---------------------------------------------------------------- helpers
    def is_bounce_notice(self, n: Notice) -> bool:
        frm = n.header("from").lower()
        subj = n.header("subject").lower()
        if n.per_recipient or n.feedback is not None:
            return True
        if "x-failed-recipients" in n.headers:
            return True
        if any(s in frm for s in self.formats.bounce_senders):
            return True
        if any(s in subj for s in self.formats.bounce_subjects):
            return True
        return n.header("return-path").strip() in ("<>", "") and bool(n.original)

    def delayed(self, n: Notice, text: str) -> bool:
        low = (n.header("subject") + "\n" + text[:4000]).lower()
        return any(m in low for m in self.formats.delayed_markers) and not any(
            m in low for m in self.formats.expired_markers
        )

    def _intro(self, text: str) -> bool:
        low = text[:20000].lower()
        return any(p in low for p in self.formats.recipient_intro)

    def _rule_reason(self, text: str) -> str:
        """The first fallback phrase rule (knowledge/bounce/reasons/, in reason_order.yaml's order) the text matches."""
        low = text.lower()
        found = next((r for r in self.kb.text_rules.order.fallback if self.kb.text_rules.match(r, low)), "")
        return found or next(
            (r for r, words in self.formats.codeless_reasons.items() if any(w in low for w in words)), ""
        )

    def _phrase_reason(self, text: str) -> str:
        low = text.lower()
        for reason, phrases in self.formats.reasons_by_phrase.items():
            if any(p in low for p in phrases):
                return reason
        return ""

    # ------------------------------------------------------------ the formats
    def from_dsn(self, n: Notice, blocks: list[DsnBlock]) -> list[Fact]:
        exclude = set(header_addrs(n.header("to"))) | set(header_addrs(n.header("from")))
        human_blocks, pre = self.ht.blocks(n.human, exclude)
        by_addr = {a: d for a, d in human_blocks}
        transcript_replies = sendmail.transcript_replies(n.human)
        coded_lines = " ".join(
            ln.strip()
            for ln in clean_lines(n.human[:20000])
            if (m := LINE_PREFIX_RE.match(ln)) and m.group(2)
        )[:1000]
        facts: list[Fact] = []
        for blk in blocks:
            fl = blk.fields
            fact = Fact(source="dsn")
            final_field = fl.get("final-recipient") or fl.get("x-actual-recipient") or ""
            final = _addr_of(final_field) if _rfc822_typed(final_field) else None
            orig = _addr_of(fl["original-recipient"]) if _rfc822_typed(fl.get("original-recipient", "")) else None
            # RFC 3464 2.3.1: Original-Recipient is the address as the sender gave it (ORCPT);
            # Final-Recipient is where the last MTA ended up after aliases and forwarding
            # ("userx@sims-ms-daemon", an X.400 O/R name). The sender's list holds the first.
            rcpt = (orig if orig and "@" in orig else None) or final or _addr_of(final_field or fl.get("original-recipient", ""))
            fact.recipient = rcpt
            if final and final != rcpt:
                fact.extra["final_recipient"] = final
            fact.action = fl.get("action", "").strip().lower().split(" ")[0]
            st = find_status(fl.get("status", ""))
            fact.status = st
            rmta = fl.get("remote-mta", "")
            if rmta:
                host = rmta.split(";", 1)[-1].strip().strip("[]").rstrip(".")
                ip = valid_ip(host)
                if ip:
                    fact.remote_ip = ip
                elif host:
                    hm = re.match(
                        r"^([A-Za-z0-9*×.\-]{1,255})(?:\s{0,3}[\[(]([0-9A-Fa-f:.]{2,45})[\])])?", host
                    )
                    if hm:
                        fact.remote_host = hm.group(1).lower().rstrip(".")
                        if hm.group(2):
                            fact.remote_ip = valid_ip(hm.group(2))
            diag = fl.get("diagnostic-code", "")
            if ";" in diag[:40]:
                dtype, _, text = diag.partition(";")
                fact.diag_type = dtype.strip().upper()
            else:
                text = diag
            text = squeeze(text)
            human = by_addr.get((rcpt or "").lower(), "")
            if not human and len(blocks) == 1 and human_blocks:
                human = human_blocks[0][1]
            status_note = fl.get("status", "").partition(" ")[2].strip(" ()")
            if text.isdigit():
                # "Diagnostic-Code: X-Unix; 255": only an exit status; the words are in the notice.
                # Sendmail prints the verdict as "554 5.3.0 unknown mailer error 255".
                words = coded_lines
                text = squeeze(words + " " + text) if words else text
            if not text:
                # A human block that only repeats the address ("Delivery to the following
                # recipients has been delayed: <rcpt>") says nothing of why.
                said = human if _ADDRESS_ONLY.sub("", human).strip(" <>()[]:;,.\t") else ""
                text = status_note or said or (pre if is_error_text(pre) else "")
            elif len(blocks) == 1 and transcript_replies:
                text = sendmail.whole_reply(text, transcript_replies)
            elif postfix.names_command_apart(human, text):
                text = postfix.with_command(text, human)
            for fname, table in self.formats.dsn_field_reasons.items():
                verdict = table.get(fl.get(fname, "").strip().lower())
                if verdict:
                    # The sending MTA's own category; like Sisimai, a category that a status
                    # code alone can't settle (userunknown ...) still gets the phrase probes.
                    fact.reason = verdict
            if status_note and status_note.lower() not in text.lower():
                text = f"{text} ({status_note})"  # "Status: 5.2.1 (mailbox disabled, ...)"
            fact.command = self.ht.command(human or text) or self.ht.command(text)
            fact.context = human
            fill_from_text(fact, text)
            if not fact.reason and fact.reply_code is None:
                # No remote reply: the words are the reporting MTA's own verdict.
                fact.reason = self._phrase_reason(text)
                if fact.reason:
                    fact.extra["mta_verdict"] = True
            if not fact.remote_host and human:
                probe = Fact()
                fill_from_text(probe, human)
                fact.remote_host, fact.remote_ip = probe.remote_host, fact.remote_ip or probe.remote_ip
            facts.append(fact)
        return facts

    def from_feedback(self, n: Notice, raw_text: str) -> list[Fact]:
        fb = n.feedback or {}
        rcpts = [
            m.group(1)
            for m in re.finditer(r"(?im)^original-rcpt-to:\s*<?([^<>\s]{1,320})>?", raw_text[:200000])
        ]
        if not rcpts:
            to = header_addrs(n.original.get("to", ""))
            rcpts = to[:1] or [""]
        facts = []
        for r in rcpts:
            f = Fact(recipient=r or None, reason="feedback", action="", source="arf")
            # The mailbox provider that sent the report (feedback@arf.mail.yahoo.com): the
            # receiving side whose user complained. An ESP relaying it leaves the
            # User-Agent to say who it was.
            reporter = header_addrs(n.header("from"))
            if reporter:
                f.extra["reporter_domain"] = reporter[0].rpartition("@")[2].lower()
            f.extra["feedback_type"] = (fb.get("feedback-type") or "").lower() or None
            src_ip = fb.get("source-ip", "")
            if src_ip:
                f.sender_ip = valid_ip(src_ip)
            f.diagnostic = squeeze(
                " ".join(
                    f"{k}: {v}"
                    for k, v in fb.items()
                    if k in ("feedback-type", "user-agent", "source-ip", "reported-domain", "arrival-date")
                )
            )
            facts.append(f)
        return facts

    def unreadable_report(self, n: Notice) -> list[Fact]:
        """A delivery report that names no recipient status ("Delivery report unavailable").

        It is a bounce, but nothing in it says why: one `undefined` record for the
        returned message's recipient.
        """
        to = header_addrs(n.original.get("to", ""))
        if not to:
            return []
        _, pre = self.ht.blocks(n.human, set())
        f = Fact(recipient=to[0], reason="undefined", source="dsn", diagnostic=pre[:500])
        f.extra["mta_verdict"] = True
        return [f]

    def autoreply(self, n: Notice) -> list[Fact]:
        auto = n.header("auto-submitted").lower()
        subj = n.header("subject").lower()
        is_auto = auto.startswith("auto-replied") or any(h in n.headers for h in _AUTOREPLY_HEADERS)
        is_auto = is_auto or n.header("precedence").lower() in ("auto_reply", "auto-reply")
        is_auto = is_auto or any(s in subj for s in self.formats.autoreply_subjects)
        if not is_auto:
            return []
        frm = header_addrs(n.header("from"))
        f = Fact(recipient=frm[0] if frm else None, reason="vacation", source="autoreply")
        f.diagnostic = squeeze(n.human)[:300]
        return [f]

    def from_text(self, n: Notice, text: str, require_code: bool) -> list[Fact]:
        exclude = set(header_addrs(n.header("to"))) | set(header_addrs(n.header("from")))
        exclude |= set(header_addrs(n.original.get("from", "")))
        blocks, pre = self.ht.blocks(text, exclude)
        facts: list[Fact] = []
        whole_delayed = self.delayed(n, text)
        failed = exim.failed_recipients(n)
        if failed and not any(a in failed for a, _ in blocks):
            # Exim and Google name the failed recipients in a header: trust it over the text.
            body = squeeze(pre + " " + " ".join(d for _, d in blocks))[:4000]
            blocks, pre = [(a, body) for a in failed], ""
        if not blocks:
            if not pre or not is_error_text(pre):
                return []
            rcpt = None
            failed = exim.failed_recipients(n)
            orig_to = header_addrs(n.original.get("to", ""))
            if failed:
                rcpt = failed[0]
            elif orig_to:
                rcpt = orig_to[0]
            else:
                # "User's mailbox is full: <rcpt>": the only address the error text names.
                rcpt = _named_address(pre, exclude)
            blocks = [(rcpt or "", pre)]
            pre = ""
        replies = sendmail.transcript_replies(text, single=True) if len(blocks) == 1 else ""
        for addr, body in blocks:
            diag = body
            if (not is_error_text(diag) and is_error_text(pre)) or (not _has_code(diag) and _has_code(pre)):
                # The verdict is above the recipient's line ("Error message below: 550 ...",
                # then "RCPT TO: <rcpt>" among the message details).
                diag = squeeze(pre + " " + diag)
            elif replies and replies[:60] not in diag:
                # Sendmail: the remote reply is in the transcript above the recipient's line.
                diag = squeeze(replies + " " + diag)
            fact = Fact(recipient=addr or None, source="text", context=text[:4000])
            fact.command = self.ht.command(diag)
            fill_from_text(fact, diag)
            if fact.reply_code is not None:
                fact.diag_type = "SMTP"
            verdict = self._phrase_reason(diag) if not fact.reply_code else ""
            if require_code and not (fact.status or fact.reply_code):
                # A pasted notice with no code at all ("retry timeout exceeded", Domino's "not
                # listed in Domino Directory") still counts when it lists the recipient as
                # failed and the MTA's own words name the reason.
                # Postfix's own recipient line ("<rcpt>: connect to ...: Connection refused")
                # counts the same way when a phrase rule names the reason.
                listed = self._intro(text) or postfix.starts_with_recipient_line(text)
                said = verdict or (self._rule_reason(diag) if listed else "")
                if not (said and addr and listed):
                    continue
                verdict = said
            fact.reason = verdict
            if fact.reason:
                fact.extra["mta_verdict"] = True  # the MTA's own words, not a remote reply
            if whole_delayed:
                fact.action = "delayed"
            facts.append(fact)
        return facts

    def from_reply_lines(self, text: str) -> list[Fact]:
        """A bare (multi-line) SMTP reply, perhaps with enhanced codes, no recipient."""
        lines = [ln for ln in clean_lines(text) if ln.strip()]
        pieces: list[list[str]] = []  # each reply line with the wrapped lines that continue it
        other: list[str] = []
        after_reply = False
        for ln in lines:
            if LINE_PREFIX_RE.match(ln):
                pieces.append([ln])
                after_reply = True
            elif after_reply and ln[:1] in (" ", "\t"):
                # An indented line right after a reply line: the reply wrapped by a mail
                # client or chat window ("550-5.7.25 ... does not have a\n    PTR record").
                # Joined once at the end: appending to one string per line was quadratic.
                pieces[-1].append(ln.strip())
            else:
                other.append(ln)
                after_reply = False
        if not pieces:
            return []
        reply_lines = [" ".join(p) for p in pieces]
        joined = join_reply_lines(reply_lines)
        fact = Fact(source="smtp-reply", diag_type="SMTP")
        fact.command = self.ht.command(text)
        fill_from_text(fact, joined)
        rest = squeeze(" ".join(other))
        m = ADDR_RE.search(joined) or ADDR_RE.search(rest)
        if m:
            fact.recipient = m.group(1)
        if rest and len(rest) < 600:
            fact.context = rest
        return [fact] if (fact.reply_code or fact.status) else []

    def from_logs(self, text: str) -> list[Fact]:
        return parse_log_lines(clean_lines(text), self.ht)

    def fragment_dsn(self, text: str) -> list[DsnBlock]:
        blocks = parse_field_blocks(text)
        return [DsnBlock(b) for b in blocks if "final-recipient" in b or "original-recipient" in b]


def any_reply(text: str) -> bool:
    return bool(find_status(text) or find_reply(text))
