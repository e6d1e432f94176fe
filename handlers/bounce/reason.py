"""Decide the bounce reason of one Fact from the knowledge tables.

The decision order is Sisimai's (go-sisimai reason/find.go), so our answers
stay comparable with the labels of its corpus:
1. a reason a format already knows (ARF feedback, auto-reply, a log's status=sent);
2. the receiving provider's own table (knowledge/bounce/providers/*.yaml);
3. "probe" reasons: status-code meaning combined with phrase rules;
4. "fallback": phrase rules alone, then what the status class says;
5. delayed -> expired, auto-reply wording -> vacation, some text -> onhold, else undefined.
"""

from __future__ import annotations

from knowledge.bounce import BounceKnowledge, ProviderRule

from .fact import Fact

# SMTP commands sent before DATA: a content filter cannot have fired yet.
EXCEPT_DATA = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT"})


class ReasonFinder:
    def __init__(self, kb: BounceKnowledge) -> None:
        self.kb = kb
        self.rules = kb.text_rules
        # Reasons a status code alone does not settle: the phrase rules get a second look.
        self.retry = frozenset(r for r, rec in kb.reasons.items() if not rec.status_decides)

    # -- helpers -------------------------------------------------------------
    def phrase(self, reason: str, text: str) -> bool:
        return self.rules.match(reason, text)

    def status_name(self, status: str | None) -> str:
        return self.kb.status.name(status)

    def _reply_reason(self, reply: int | None) -> str:
        return self.kb.status.reply_codes.get(str(reply), "") if reply else ""

    # -- probes (status meaning + phrases) -----------------------------------
    def probe(self, reason: str, f: Fact, text: str) -> bool:
        temp = self.status_name(f.status)
        if reason in ("mailboxfull", "emailtoolarge", "authfailure", "requireptr", "ratelimited", "blocked"):
            return temp == reason or self.phrase(reason, text)
        if reason in ("suspend", "notaccept", "failedstarttls"):
            return self._reply_reason(f.reply_code) == reason or self.phrase(reason, text)
        if reason in ("hasmoved", "notcompliantrfc", "badreputation"):
            return self.phrase(reason, text)
        if reason == "norelaying":
            if f.command in ("CONN", "EHLO", "HELO"):
                return False
            return self.phrase(reason, text)
        if reason == "userunknown":
            if temp == "userunknown":
                for other in ("norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept"):
                    if self.phrase(other, text):
                        return False
                return True
            # RFC 3463 x.1.y is a status about the address itself (x.1.7 / x.1.8 are the
            # sender's): with "user unknown" words it names a missing recipient, even where a
            # receiver reuses a code whose table meaning is another (Exchange 5.1.10, RFC 7505).
            st = f.status or ""
            address_status = st[1:3] == ".1" and st[2:5] not in (".1.7", ".1.8") and not f.command
            return (f.command == "RCPT" or address_status) and self.phrase("userunknown", text)
        if reason == "filtered":
            if temp == "filtered":
                return self.phrase("userunknown", text) or self.phrase("filtered", text)
            if f.command in EXCEPT_DATA:
                return False
            return self.phrase("filtered", text) or self.phrase("userunknown", text)
        if reason == "contenterror":
            if self.probe("spamdetected", f, text):
                return False
            return temp == "contenterror" or self.phrase(reason, text)
        if reason == "rejected":
            if temp == "rejected":
                return True
            if f.command == "MAIL":
                return self.phrase(reason, text)
            if f.command == "DATA" and temp != "userunknown":
                return self.phrase(reason, text)
            if temp in ("", "undefined", "onhold", "securityerror", "systemerror"):
                return self.phrase(reason, text)
            return False
        if reason == "hostunknown":
            if temp == "hostunknown":
                return not self.phrase("networkerror", text)
            return self.phrase(reason, text)
        if reason == "spamdetected":
            if not f.status:
                return False
            if temp == "spamdetected":
                return True
            if f.command in EXCEPT_DATA:
                return False
            return self.phrase(reason, text)
        return self.phrase(reason, text)

    def _another(self, f: Fact, text: str) -> str:
        if f.reason and f.reason not in ("undefined", "onhold"):
            return f.reason  # a reason the format preset, kept when nothing better matched
        reason = self.status_name(f.status)
        if reason in self.retry or reason == "" or f.diag_type != "SMTP":
            for name in self.rules.order.fallback:
                if self.phrase(name, text):
                    return name
            if reason:
                return reason
            head = (f.status or "")[:3]
            if head in ("5.6", "4.6"):
                return "contenterror"
            if head in ("5.7", "4.7"):
                return "securityerror"
            if f.diag_type.upper().startswith("X-UNIX"):
                return "mailererror"
            if f.reply_code and (400 < f.reply_code < 408 or 500 < f.reply_code < 508):
                return "syntaxerror"
            if f.action in ("delayed", "expired"):
                return "expired"
            if f.command in ("CONN", "EHLO", "HELO"):
                return "blocked"  # refused before any envelope was sent: the client was refused
        return reason

    # -- entry points --------------------------------------------------------
    def generic(self, f: Fact) -> str:
        text = f.diagnostic.lower()
        if f.status and f.status.startswith("2."):
            return "delivered"
        if (f.status or "")[1:] == ".4.7" and self.phrase("expired", text):
            # The queue lifetime ran out (x.4.7 and "could not be delivered for 5 days"):
            # the last attempt's error ("Connection refused") is why it kept failing,
            # not why it bounced.
            return "expired"
        reason = ""
        # Postfix writes "X-Postfix" for replies it relays from the remote side too.
        if f.diag_type in ("SMTP", "", "X-POSTFIX"):
            for name in self.rules.order.probe:
                if self.probe(name, f, text):
                    reason = name
                    break
        if reason and reason != "undefined":
            return reason
        reason = self._another(f, text)
        if reason == "undefined":
            reason = ""
        if not reason and f.action == "delayed":
            reason = "expired"
        if reason:
            return reason
        if self.phrase("vacation", text):
            return "vacation"
        return "onhold" if text else "undefined"

    def find(self, f: Fact, provider_rule: ProviderRule | None) -> str:
        if f.reason and (f.reason not in self.retry or f.extra.get("mta_verdict")):
            return f.reason
        if provider_rule is not None:
            return provider_rule.reason
        return self.generic(f)
