"""Content and format signals filters dislike (pure, sync, cheap).

Each function returns findings (check="message") with plain explanations; the
engine ranks them in the verdict.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from handlers.findings import finding
from handlers.model import Finding

from .parse import ParsedMessage, header_date

CHECK = "message"
SHORT_BODY_WEIGHT = 40  # visible "characters" (CJK count double) below which a body is "almost empty"

# --------------------------------------------------------------------- subject
_MEANINGLESS = {
    "test", "testing", "test mail", "test message", "tst", "hi", "hello", "hey", "yo", "a", "aa", "asdf",
    "qwerty", "xxx", "abc", "123", "1234", "temp", "untitled", "no subject", "(no subject)", "none",
    "fw", "fwd", "re", "テスト", "てすと", "ﾃｽﾄ", "test送信", "テスト送信", "無題", "件名なし", "(件名なし)",
    "確認", "あ", "ああ", "あああ",
}  # fmt: skip
_SPAMMY = re.compile(
    r"(?i)(100% free|free money|act now|winner|you have won|congratulations|urgent(?:ly)?|limited time|"
    r"click here|earn \$|\$\$\$|cash bonus|no cost|risk[- ]free|viagra|casino|crypto giveaway|"
    r"無料|当選|副業|高収入|今すぐ|限定|緊急|儲か|出会い|完全無料)"
)


def subject_findings(pm: ParsedMessage) -> list[Finding]:
    raw = pm.first("Subject")
    subject = pm.decoded("Subject") or ""
    s = subject.strip()
    reasons: list[str] = []
    if raw is None:
        reasons.append("the message has no Subject header")
    elif not s:
        reasons.append("the subject is empty")
    else:
        low = re.sub(r"^(?:(?:re|fw|fwd|aw|tr|転送)\s?[:：]\s?)+", "", s.lower()).strip(" .!?。！？")
        compact = re.sub(r"\s+", "", low)
        if low in _MEANINGLESS or compact in _MEANINGLESS:
            reasons.append(f"“{s}” says nothing about the content, which is what test or spam mail looks like")
        elif len(compact) <= 5 and len(set(compact)) == 1:
            reasons.append(f"“{s}” is one repeated character, a meaningless subject")
        elif len(compact) <= 4 and compact.isascii() and compact.isalpha() and not re.search(r"[aeiouy]", compact):
            reasons.append(f"“{s}” is a few letters without meaning")
        letters = [c for c in s if c.isascii() and c.isalpha()]
        if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= 0.8:
            reasons.append("the subject is written in capital letters (SHOUTING), a classic spam signal")
        if re.search(r"[!！?？]{3,}|[$€¥￥]{2,}", s):
            reasons.append("the subject has runs of !!! / ??? / $$$")
        m = _SPAMMY.search(s)
        if m:
            reasons.append(f"the subject contains “{m.group(0)}”, a phrase spam filters weigh heavily")
        if len(s) > 150:
            reasons.append(f"the subject is very long ({len(s)} characters)")
    if not reasons:
        return []
    return [
        finding(
            "message.subject_suspicious",
            "warning",
            "The subject looks like spam or test mail" if s else "The message has no subject",
            "; ".join(r[:1].upper() + r[1:] for r in reasons)
            + ". Filters score the subject on its own: write a short, specific subject that says what the "
            "mail is about (e.g. “Invoice 2024-118 for March”).",
            evidence={"value": s, "count": len(reasons), "reasons": reasons},
            remediation=["message.subject_content"],
            check=CHECK,
        )
    ]


# --------------------------------------------------------------------- body
_SIG_SEP = re.compile(r"(?m)^-- ?$")
_QUOTED = re.compile(r"(?m)^>.*$")


def visible_weight(text: str) -> int:
    """Rough amount of readable text: ASCII letters/digits count 1, CJK characters 2."""
    text = _SIG_SEP.split(text, 1)[0]
    text = _QUOTED.sub("", text)
    weight = 0
    for ch in text[:20000]:
        if ch.isspace() or unicodedata.category(ch).startswith(("P", "S", "C", "Z")):
            continue
        weight += 2 if ord(ch) >= 0x2E80 else 1
        if weight > 10_000:
            break
    return weight


def body_findings(pm: ParsedMessage) -> list[Finding]:
    if pm.header_only:
        return []
    w = visible_weight(pm.body_text)
    if w >= SHORT_BODY_WEIGHT:
        return []
    shown = " ".join(pm.body_text.split())[:80]
    if pm.attachments:
        extra = (
            " A message that is little more than an attachment is what malware mail looks like: filters are "
            "strict with it. Say in a few sentences who you are and what the attachment is."
        )
    else:
        extra = " Write a few real sentences (greeting, what the mail is about, who sends it, contact details)."
    return [
        finding(
            "message.short_body",
            "warning",
            "The message has almost no text" if w else "The message body is empty",
            f"The body has about {w} characters of readable text"
            + (f" (“{shown}”)" if shown else "")
            + ". Content filters need text to judge a message; a near-empty body is typical of spam and "
            "test mail." + extra,
            evidence={"count": w, "value": shown, "attachments": len(pm.attachments)},
            remediation=["message.body_content"],
            check=CHECK,
        )
    ]


# --------------------------------------------------------------------- attachments
_DANGEROUS_EXT = {
    "exe", "scr", "com", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "msi", "msp",
    "jar", "lnk", "ps1", "cpl", "reg", "iso", "img", "vhd", "vhdx", "one", "xll", "chm", "url", "apk", "dll",
}  # fmt: skip
_DOC_EXT = {"pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "jpg", "jpeg", "png", "gif",
            "txt", "zip", "rar", "7z", "html", "htm", "csv"}  # fmt: skip
_ILLEGAL = set('\\/:*?"<>|')


def _name_problems(name: str) -> list[str]:
    out: list[str] = []
    if "\u3000" in name:
        out.append("it contains a full-width space (U+3000)")
    odd_spaces = sorted({f"U+{ord(c):04X}" for c in name if c != "\u3000" and c != " " and unicodedata.category(c) == "Zs"})
    if odd_spaces:
        out.append(f"it contains unusual space characters ({', '.join(odd_spaces)})")
    if any(c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in name):
        out.append("it contains a right-to-left override character, used to disguise file extensions")
    invisible = [c for c in name if unicodedata.category(c) in ("Cc", "Cf") and c not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"]
    if invisible:
        out.append("it contains control or invisible characters")
    if "\ufffd" in name:
        out.append("it could not be decoded (garbled characters): the charset is missing or wrong")
    bad = sorted({c for c in name if c in _ILLEGAL})
    if bad:
        out.append(f"it contains characters not allowed in Windows file names ({' '.join(bad)})")
    if any(0xFF61 <= ord(c) <= 0xFF9F for c in name):
        out.append("it contains half-width katakana, which ISO-2022-JP cannot carry and many systems garble")
    if any(0x2460 <= ord(c) <= 0x24FF or 0x3220 <= ord(c) <= 0x33FF for c in name):
        out.append("it contains platform-dependent characters (①, ㈱, ㌔ ...) that garble on other systems")
    if name != name.strip() or "  " in name:
        out.append("it has leading, trailing or doubled spaces")
    parts = name.lower().rsplit(".", 2)
    if len(parts) == 3 and parts[1] in _DOC_EXT and parts[2] in _DANGEROUS_EXT:
        out.append(f"it has a double extension (.{parts[1]}.{parts[2]}), a malware disguise")
    elif len(parts) >= 2 and parts[-1] in _DANGEROUS_EXT:
        out.append(f"the .{parts[-1]} type is executable; most receivers block or junk it")
    if len(name) > 120:
        out.append(f"it is very long ({len(name)} characters)")
    return out


def attachment_findings(pm: ParsedMessage) -> list[Finding]:
    out: list[Finding] = []
    for att in pm.attachments[:20]:
        name = att.filename
        problems = _name_problems(name) if name else []
        if att.encoding_note == "raw 8-bit" and name and not name.isascii():
            problems.append("the name is raw 8-bit text in the header instead of RFC 2231 / RFC 2047 encoding")
        if not problems:
            continue
        dangerous = any("executable" in p or "double extension" in p or "right-to-left" in p for p in problems)
        out.append(
            finding(
                "message.attachment_name",
                "critical" if dangerous else "warning",
                f"Attachment name “{name}” is likely to hurt delivery",
                "The attachment name: " + "; ".join(problems) + ". "
                "Filters (and Japanese carriers in particular) distrust such names; use a plain name with "
                "ordinary characters and a single, common extension (e.g. “見積書_2024-03.pdf”).",
                evidence={"value": name, "target": name, "count": len(problems), "problems": problems,
                          "meaning": "; ".join(problems),
                          "content_type": att.content_type, "encoding": att.encoding_note},
                remediation=["message.attachment_names"],
                check=CHECK,
            )
        )
    return out


# --------------------------------------------------------------------- bulk / list mail
_ESP_HEADERS = (
    "feedback-id", "x-campaign", "x-campaign-id", "x-campaignid", "x-mailgun-tag", "x-mailgun-variables",
    "x-sg-eid", "x-sg-id", "x-ses-outgoing", "x-ses-configuration-set", "x-mc-user", "x-mcda", "x-mailjet-campaign",
    "x-pm-message-id", "x-sib-id", "x-mkt", "x-marketo", "x-csa-complaints", "x-mailchimp", "x-job",
    "x-rpcampaign", "x-emarsys", "x-bme-id", "x-listmember", "x-newsletter", "x-mail-magazine",
)  # fmt: skip
_ESP_MAILERS = re.compile(
    r"(?i)(mailchimp|mailgun|sendgrid|amazon ses|sendinblue|brevo|mailjet|constant ?contact|hubspot|marketo|"
    r"salesforce|pardot|klaviyo|benchmark|acumbamail|mautic|phplist|mailpoet|cuenote|blastmail|配配メール|"
    r"acmailer|wiz ?cloud|bownow|mail ?magazine|newsletter)"
)


def bulk_signals(pm: ParsedMessage) -> list[str]:
    signals: list[str] = []
    prec = (pm.first("Precedence") or "").strip().lower()
    if prec in ("bulk", "list", "junk"):
        signals.append(f"Precedence: {prec}")
    if pm.has("List-Id"):
        signals.append("List-Id")
    if pm.has("List-Unsubscribe"):
        signals.append("List-Unsubscribe")
    for name in _ESP_HEADERS:
        if pm.has(name):
            signals.append(name.title())
    for name in ("X-Mailer", "User-Agent", "X-Mailer-Info"):
        v = pm.first(name)
        if v and _ESP_MAILERS.search(v[:300]):
            signals.append(f"{name}: {v[:60]}")
    return signals[:10]


def _unsub_uris(value: str) -> list[str]:
    return re.findall(r"<\s{0,3}([^<>\s]{1,2000})\s{0,3}>", value[:6000])


def list_unsubscribe_findings(pm: ParsedMessage, dkim_signed: set[str], dkim_checked: bool) -> list[Finding]:
    """RFC 2369 / RFC 8058 one-click unsubscribe on bulk mail (Gmail, Yahoo bulk-sender rules).

    dkim_signed: header names covered by a valid DKIM signature of this message.
    """
    signals = bulk_signals(pm)
    if not signals:
        return []
    lu = pm.first("List-Unsubscribe")
    post = pm.first("List-Unsubscribe-Post") or ""
    uris = _unsub_uris(lu or "")
    https = [u for u in uris if u.lower().startswith("https://")]
    http = [u for u in uris if u.lower().startswith("http://")]
    mailto = [u for u in uris if u.lower().startswith("mailto:")]
    one_click = re.sub(r"\s+", "", post).lower() == "list-unsubscribe=one-click"
    ev = {"value": lu or "", "signals": signals, "count": len(signals), "post": post}
    why = f"This looks like bulk or list mail ({', '.join(signals[:4])})."
    problems: list[str] = []
    if lu is None:
        problems.append(
            "it has no List-Unsubscribe header. Gmail and Yahoo require bulk senders to offer one-click "
            "unsubscribe; without it recipients press “Report spam” instead, which hurts the domain's reputation"
        )
    else:
        if not https:
            if mailto and not http:
                problems.append(
                    "List-Unsubscribe has only a mailto: address. Yahoo accepts mailto:, but Gmail needs an https "
                    "URL with RFC 8058 one-click"
                )
            elif http:
                problems.append("the List-Unsubscribe URL is http://, not https:// (Gmail needs https)")
            else:
                problems.append("List-Unsubscribe has no usable <https://...> URL")
        if not one_click:
            problems.append(
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click is missing"
                if not post
                else f"List-Unsubscribe-Post is “{post[:60]}”, not “List-Unsubscribe=One-Click”"
            )
        elif dkim_checked and not {"list-unsubscribe", "list-unsubscribe-post"} <= dkim_signed:
            problems.append(
                "RFC 8058 requires a valid DKIM signature covering both List-Unsubscribe and "
                "List-Unsubscribe-Post; no valid signature here covers them"
            )
    if not problems:
        return [
            finding(
                "message.list_unsubscribe_ok",
                "ok",
                "One-click unsubscribe (RFC 8058) is in place",
                why + " It has an https List-Unsubscribe URL with List-Unsubscribe-Post: One-Click.",
                evidence=ev,
                check=CHECK,
            )
        ]
    return [
        finding(
            "message.no_list_unsubscribe",
            "warning",
            "Bulk mail without working one-click unsubscribe",
            why + " Problems: " + "; ".join(problems) + ". Gmail requires `List-Unsubscribe: <https://...>` plus "
            "`List-Unsubscribe-Post: List-Unsubscribe=One-Click` for marketing mail from bulk senders (and a "
            "visible unsubscribe link in the body); Yahoo asks for one-click too but also accepts mailto:.",
            evidence={**ev, "problems": problems},
            remediation=["message.add_one_click_unsubscribe"],
            check=CHECK,
        )
    ]


# --------------------------------------------------------------------- headers
_MSGID = re.compile(r"^\s{0,5}<[^<>@\s]{1,250}@[^<>@\s]{1,250}>\s{0,5}$")
_SINGLETONS = ("from", "date", "subject", "message-id", "to", "cc", "sender", "reply-to", "in-reply-to")


def header_findings(pm: ParsedMessage, now: datetime | None = None) -> list[Finding]:
    out: list[Finding] = []
    now = now or datetime.now(UTC)

    def add(name: str, problem: str, sev: str = "warning", value: str = "") -> None:
        out.append(
            finding(
                "message.missing_header",
                sev,  # type: ignore[arg-type]
                f"{name}: {problem}",
                f"{problem[:1].upper() + problem[1:]}. Gmail rejects or junks messages that break RFC 5322 "
                "(missing or duplicate From/Date/Message-ID, malformed addresses); fix it in the sending "
                "application or server.",
                evidence={"target": name, "value": name, "header_value": value[:200], "error": problem},
                remediation=["message.fix_headers"],
                check=CHECK,
            )
        )

    if not pm.headers:
        add("Headers", "no header fields were found: paste the full message source (headers and body)", "warning")
        return out
    froms = pm.all("From")
    if not froms:
        add("From", "the From header is missing", "critical")
    else:
        if len(froms) > 1:
            add("From", f"there are {len(froms)} From headers (exactly one is allowed)", "critical")
        addrs = email.utils.getaddresses([froms[0]])
        mail = [a for _, a in addrs if a]
        if not mail or "@" not in mail[0] or not mail[0].rsplit("@", 1)[1].strip(".>"):
            add("From", "the From header has no valid address", "critical", froms[0])
        elif len(mail) > 1 and not pm.has("Sender"):
            add("From", "From names several mailboxes but there is no Sender header", "warning", froms[0])
    dates = pm.all("Date")
    if not dates:
        add("Date", "the Date header is missing", "warning")
    else:
        dt = header_date(dates[0])
        if dt is None:
            add("Date", "the Date header can't be parsed (RFC 5322 date format expected)", "warning", dates[0])
        else:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            if dt > now + timedelta(days=1):
                add("Date", "the Date is in the future", "warning", dates[0])
            elif dt.year < 2000:
                add("Date", "the Date is implausibly old", "warning", dates[0])
    ids = pm.all("Message-ID")
    if not ids:
        add("Message-ID", "the Message-ID header is missing", "warning")
    elif not _MSGID.match(ids[0]):
        add("Message-ID", "the Message-ID is malformed (expected <unique@domain>)", "warning", ids[0])
    for name in _SINGLETONS:
        if name in ("from",):
            continue
        n = len(pm.all(name))
        if n > 1:
            add(name.title(), f"there are {n} {name.title()} headers (at most one is allowed)", "warning")
    if not pm.has("To") and not pm.has("Cc") and not pm.has("Bcc"):
        add("To", "no To/Cc header: recipients are hidden (Bcc-only mail scores as spam)", "info")
    raw8 = [n for n, v in pm.headers if n.lower() in ("subject", "from", "to") and any(
        "\udc80" <= c <= "\udcff" for c in v)]  # fmt: skip
    if raw8:
        add(raw8[0], "the header contains raw 8-bit bytes instead of RFC 2047 encoded words", "warning")
    return out
