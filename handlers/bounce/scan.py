"""Read recipients and their error text out of a human-readable bounce text.

No per-MTA code: the MTAs' templates share a shape (an address on its own line
or at the start of a line, then the remote reply or the MTA's reason), and the
few words that differ are data in knowledge/bounce/mta_formats.yaml.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right

from knowledge.bounce import MtaFormats

from .fact import Fact
from .smtp import MAX_DIAG, find_reply, find_status, squeeze, strip_repeated_codes
from .textin import clean_lines

# What people write instead of the part of an address they hide before pasting
# ("***@gmail.com", "×××@example.jp", "...@EXAMPLE.jp", "user@***", "xxx@xxx"): still an
# address token in the text, so recipient lines keep their shape.
_MASK_LOCAL = r"(?:\*{1,20}|×{1,20}|\.{3}|…|#{2,20}|\?{2,20})"
_MASK_DOMAIN = r"(?:[*×]{1,20}(?:\.[A-Za-z0-9*×\-]{1,63}){0,6}|x{2,20})"
ADDR_RE = re.compile(
    r"(?<![\w.+\-=*×…])((?:[A-Za-z0-9_][A-Za-z0-9._%+\-=']{0,63}|" + _MASK_LOCAL + r")@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.){1,8}[A-Za-z]{2,24}|" + _MASK_DOMAIN + r"))(?![\w*×-])"
)
# A whole address replaced by a mask: "<...>", "<***>", "(redacted)", "[email]".
WHOLE_MASK_RE = re.compile(
    r"(?i)<(?:\.{3}|…|\*{2,20}|×{2,20}|x{3,20}|redacted|email|masked|removed|hidden)>"
    r"|[\[(](?:redacted|email|masked|removed|hidden|email address)[\])]"
)
_MASK_HINT = re.compile(r"\.\.\.|…|\*\*|××|xxx|redacted|email|masked|removed|hidden")
_MASKED_LOCAL_RE = re.compile(r"^(?:[*×#?.…]{1,20}|x{3,20}|redacted|masked|hidden)$", re.IGNORECASE)


def clean_addr(addr: str) -> str:
    """An address as matched, without the punctuation a sentence put around it."""
    local, _, domain = addr.rpartition("@")
    if local and _MASKED_LOCAL_RE.match(local):
        return local + "@" + domain.rstrip(".'")
    return addr.strip(".'")


def is_masked_address(addr: str | None) -> bool:
    """True when the text shows an address someone hid ("***@gmail.com", "<...>", "")."""
    if addr is None:
        return False
    addr = addr.strip()
    if not addr or WHOLE_MASK_RE.fullmatch(addr) or addr.strip("<>()[]").lower() in ("...", "redacted", "***"):
        return True
    local, at, domain = addr.rpartition("@")
    if not at:
        return not any(c.isalnum() for c in addr) or addr.lower() in ("redacted", "masked", "hidden", "email")
    return bool(_MASKED_LOCAL_RE.match(local)) or any(c in domain for c in "*×") or bool(
        re.fullmatch(r"x{2,20}", domain, re.IGNORECASE)
    )
# host[ip] (Postfix), host [ip] (Exim, DragonFly), host (ip), "remote host ip said"
HOST_IP_RE = re.compile(
    r"(?<![\w.-])((?:[A-Za-z0-9][A-Za-z0-9\-]{0,62}|[A-Za-z0-9\-]{0,20}[*×]{1,8})(?:\.[A-Za-z0-9\-]{1,63}){1,10})\.?\s{0,2}[\[(]((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}|\d{1,3}(?:\.\d{1,3}){3}|(?:[0-9A-Fa-f]{0,4}:){1,7}[0-9A-Fa-f.:*×]{0,30}[*×][0-9A-Fa-f.:*×]{0,30}|[0-9xX*×]{1,3}(?:\.[0-9xX*×]{1,3}){3}|IP|ip|\$\(_ipsrc\)|redacted)[\])]"
)
# An IP address someone masked: "[2400:8500:1302:3134:157:7:***:***]", "[192.0.2.***]",
# "*.*.*.*", "x.x.x.x", "[IP]", "$(_ipsrc)". It names no address to look up, but a
# masked IPv6 address still says the sender used IPv6.
MASKED_IP_RE = re.compile(
    r"(?<![\w:.])((?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f:]{0,20}(?:[*×]{1,8}|x{2,4})(?::(?:[0-9A-Fa-f]{1,4}|[*×]{1,8}|x{2,4})){0,6}"
    r"|(?:\d{1,3}|[*×x]{1,3})(?:\.(?:\d{1,3}|[*×x]{1,3})){3}|\[IP\]|\$\(_ipsrc\))(?![\w:.])"
)
REMOTE_IP_ONLY_RE = re.compile(r"remote host \[?(\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]{3,45})\]? said")
TALKING_TO_RE = re.compile(
    r"(?:while talking to|talking to|connect(?:ed|ion)? to) ([A-Za-z0-9*×][A-Za-z0-9*×\-.]{1,253}[A-Za-z0-9])\.?[:.]?(?:\s|$)"
)
BRACKET_IP_RE = re.compile(r"\[((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}|\d{1,3}(?:\.\d{1,3}){3})\]")
BARE_IP_RE = re.compile(
    r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}|(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4})(?![\w.:])"
)
_SKIP_BEFORE = (
    "mail from:",
    "from:",
    "sender:",
    "sender",
    "envelope-from",
    "return-path:",
    "expanded from",
    "generated from",  # Exim: "(ultimately generated from alias@...)"
    "reply-to:",
    "contact",  # "please contact <postmaster@...>"
    "send mail to",
    "sent by",  # Exim: "A message sent by <sender> could not be delivered"
    "to the address",  # "send mail with the body 'guide' to the address <list-ctl@...>": an instruction
)
# Sendmail's per-recipient error line: "550 <rcpt>... User unknown" (also "554 5.0.0 <rcpt>...").
_SENDMAIL_ERROR_PREFIX = re.compile(r"^[245]\d\d(?:[ -][245]\.\d{1,3}\.\d{1,3})?$")
_MAX_BLOCK_LINES = 80
MAX_SCAN_LINES = 20_000  # a bounce's own text is far shorter; the rest of a huge paste is not read


def valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]()")))
    except ValueError:
        return None


def is_error_text(text: str) -> bool:
    low = text.lower()
    return bool(find_status(text) or find_reply(text)) or any(
        w in low
        for w in (
            "error", "unknown", "reject", "denied", "fail", "refused", "invalid", "not ",
            "unable to", "could not", "couldn't", "undeliverable", "is full", "quota", "disabled",
            "expired", "delayed",
        )
    )  # fmt: skip


class HumanText:
    def __init__(self, formats: MtaFormats) -> None:
        self.f = formats

    def _strip_boilerplate(self, line: str) -> str:
        """Remove template phrases, keeping anything else an MTA put on the same line."""
        low = line.lower()
        for b in self.f.boilerplate:
            pos = low.find(b)
            while pos >= 0:
                line = line[:pos] + line[pos + len(b) :]
                low = low[:pos] + low[pos + len(b) :]
                pos = low.find(b)
        return line if any(c.isalnum() for c in line) else ""

    def command(self, text: str) -> str:
        """Which SMTP command the reply answered, from the MTA's explicit wording."""
        low = text.lower()
        best, best_pos = "", len(low) + 1
        transcript: list[tuple[int, str]] = []
        for cmd, markers in self.f.commands.items():
            for m in markers:
                pos = low.find(m)
                if pos < 0:
                    continue
                if m.startswith(">>>"):
                    transcript.append((pos, cmd))
                elif pos < best_pos:
                    best, best_pos = cmd, pos
        if best:
            return best
        err = min((p for p in (low.find("<<< 5"), low.find("<<< 4")) if p >= 0), default=-1)
        if transcript:
            before = [t for t in transcript if t[0] < max(err, 0) or err < 0]
            if before:
                return max(before)[1]
        if err >= 0 and ">>> " not in low[:err]:
            return "CONN"  # a Sendmail transcript with a reply but no command: refused at connect
        return ""

    def recipients(self, lines: list[str], exclude: set[str]) -> list[tuple[str, int, bool]]:
        """Failed-recipient anchors: (address, line index, one-line block), first occurrence each.

        A Sendmail error line ("550 <rcpt>... User unknown") holds the whole verdict for its
        recipient: the lines after it belong to the next recipient's transcript.
        """
        out: list[tuple[str, int, bool]] = []
        seen: set[str] = set()
        intro_until = -1
        prev = ""
        for i, line in enumerate(lines):
            low = line.lower()
            if any(p in low for p in self.f.recipient_intro):
                intro_until = i + 3
            found = (
                [(m.start(), m.end(), clean_addr(m.group(1)).lower()) for m in ADDR_RE.finditer(line)]
                if "@" in line
                else []
            )
            if ("<" in line or "(" in line or "[" in line) and _MASK_HINT.search(low):
                found += [(m.start(), m.end(), m.group(0).lower()) for m in WHOLE_MASK_RE.finditer(line)]
                found.sort()
            for m_start, m_end, addr in found:
                if addr in exclude or addr in seen:
                    continue
                before = low[:m_start].rstrip(" <\"'\t([")
                if any(before.endswith(s) for s in _SKIP_BEFORE):
                    continue
                prefix = before.strip(" -*>:\t")
                if not prefix and any(prev.endswith(s) for s in _SKIP_BEFORE):
                    continue  # "A message sent by" / "<sender>" on the next line
                after = line[m_end : m_end + 5].lstrip(">")
                sendmail_line = bool(_SENDMAIL_ERROR_PREFIX.match(prefix)) and after.startswith("...")
                ok = not prefix or before.endswith(("rcpt to:", "recipient:", "recipient", "address:"))
                ok = ok or sendmail_line
                ok = ok or i <= intro_until or any(p in before for p in self.f.recipient_intro)
                if ok:
                    out.append((addr, i, sendmail_line))
                    seen.add(addr)
            if low.strip():
                prev = low.strip().rstrip(" :")
        return out

    def blocks(self, text: str, exclude: set[str]) -> tuple[list[tuple[str, str]], str]:
        """[(recipient, diagnostic)] from the text, plus the text before any recipient.

        Linear in the text: lines are cleaned of boilerplate only where a block or the
        preamble uses them, and each block reads its own lines (a paste of thousands of
        lines with hundreds of addresses must not cost lines x addresses)."""
        lines = clean_lines(text)[:MAX_SCAN_LINES]
        anchors = self.recipients(lines, exclude)
        stripped: dict[int, str] = {}

        def kept(lo: int, hi: int, max_lines: int) -> list[str]:
            out: list[str] = []
            size = 0
            for i in range(lo, hi):
                t = stripped.get(i)
                if t is None:
                    t = stripped[i] = self._strip_boilerplate(lines[i])
                if t.strip():
                    out.append(t)
                    size += len(t)
                    if len(out) >= max_lines or size > 2 * MAX_DIAG:
                        break
            return out

        if not anchors:
            return [], squeeze(" ".join(kept(0, len(lines), _MAX_BLOCK_LINES)))[:MAX_DIAG]
        first = anchors[0][1]
        pre = squeeze(" ".join(kept(0, first, len(lines))))[:MAX_DIAG]
        # A line that is nothing but a failed recipient's address starts that recipient's
        # section again: bilingual notices (Mail.ru: Russian, then Exim's English) list
        # every recipient twice, and the last one's block must not swallow the repeat.
        # Its own address alone on a line is only its reply wrapping ("...illegal user:").
        names = {a for a, _, _ in anchors}
        bare = [(i, a) for i, ln in enumerate(lines) if (a := ln.strip().strip("<>:").lower()) in names]
        bare_at = [i for i, _ in bare]
        starts = sorted({a[1] for a in anchors})
        out: list[tuple[str, str]] = []
        for n, (addr, start, one_line) in enumerate(anchors):
            end = anchors[n + 1][1] if n + 1 < len(anchors) else len(lines)
            k = bisect_right(bare_at, start)
            while k < len(bare) and bare[k][1] == addr:  # its own: a wrapped reply
                k += 1
            if k < len(bare):
                end = min(end, bare[k][0])
            if end == start:  # several addresses on one line share the text after them
                k = bisect_right(starts, start)
                end = starts[k] if k < len(starts) else len(lines)
            if one_line and n + 1 < len(anchors):
                end = min(end, start + 1)
            body = kept(start, end, _MAX_BLOCK_LINES)
            out.append((addr, squeeze(" ".join(body))[:MAX_DIAG]))
        return out, pre


# Where a reply starts in an MTA's sentence: "RCPT TO:<a@b>: 550 ...", "end of data: 554 ...".
_CODE_START = re.compile(r"(?<![\w.\-/#=:])[245][0-5]\d(?:[ -][245]\.\d{1,3}\.\d{1,3})?(?=[ \-:]|$)")
_LEAD_END = (":", ">", "said", "]", "].", "...", "。", "：", "because of")


# What notices put before the words of a recipient's error: the address itself (a Sendmail
# or Gmail recipient line, "kijitora@example.jp"), transcript arrows, and separator lines
# ("----- Transcript of session follows -----", "-------server message").
_LEAD = re.compile(
    r"(?:\s{0,4}(?:>{2,3}|<{2,3})?\s{0,4}<?(?:[^\s<>@]{1,64}@[^\s<>@]{1,255}|\.{3}|\*{3})>?(?:\.{3}|:)?(?=\s)"
    r"|\s{0,4}-{3,80}[ A-Za-z]{0,50}?(?:-{3,80}|(?=\s[245]\d\d[ -])))"
)


def _strip_lead(text: str) -> str:
    pos = 0
    for _ in range(6):
        m = _LEAD.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
    rest = text[pos:].lstrip()
    return rest if len(rest) >= 8 else text


def remote_words(text: str) -> str:
    """The remote server's own words of a diagnostic, without the notice's wording around them.

    "<rcpt>: host mx[ip] said: 550 5.7.1 ..." and "SMTP error from remote mail server after
    RCPT TO:<rcpt>: 550 ..." both start at "550". The command note at the end ("(in reply
    to end of DATA command)") stays: it says when the server answered. A text with no
    reply code is the reporting MTA's own verdict and is kept whole.
    """
    text = _cut_returned_headers(_strip_lead(text))
    if _CODE_START.match(text):
        return text  # already the reply; a transcript quoted later in it is not the start
    quoted = _QUOTED_REPLY.search(text[:400])
    if quoted:
        # "5.1.0 - Unknown address error 550 '5.2.2 <rcpt>... Mailbox Full'": the notice's
        # own category, then the remote reply's code and its words in quotes.
        return f"{quoted.group(1)} {quoted.group(2)}".strip()
    part = reply_part(text)
    m = _CODE_START.search(part[:400])
    if m and m.start() > 0:
        lead = part[: m.start()].rstrip()
        # A reply quoted in brackets ("It responded as follows: [550 5.1.1 User unknown]"):
        # the words are what the brackets hold.
        bracketed = lead.endswith("[")
        if bracketed:
            lead = lead[:-1].rstrip()
        if part is not text or lead.endswith(_LEAD_END):
            reply = part[m.start() :]
            if bracketed:
                reply = _until_closing_bracket(reply)
            return reply
    elif m is None and part is not text and part:
        return part
    return part if part is not text and m is not None else text


# A notice that runs the returned message's headers into the error text (Zoho, some
# gateways): "... User Unknown Received:from mail.example.com by mx ..." — what follows
# the first Received header is the sender's own mail, not the remote server's words.
# The closing quote is one followed by a space, a bracket or the end: an apostrophe
# inside the reply ("the recipient's address") does not end it.
_QUOTED_REPLY = re.compile(r"(?<![\w.])([245]\d\d) '([245]\.\d{1,3}\.\d{1,3}.{0,400}?)'(?=[\s)\]]|$)")


def _until_closing_bracket(reply: str) -> str:
    """`reply` up to the "]" that closes the bracket it was quoted in; brackets inside it
    ("messages from [192.0.2.1] weren't sent") are kept."""
    depth = 0
    for i, c in enumerate(reply):
        if c == "[":
            depth += 1
        elif c == "]":
            if depth == 0:
                return reply[:i].rstrip()
            depth -= 1
    return reply
_RETURNED_HEADERS = re.compile(r"\sReceived: ?from\s", re.I)


def _cut_returned_headers(text: str) -> str:
    m = _RETURNED_HEADERS.search(text, 1)
    return text[: m.start()].rstrip() if m else text


def reply_part(text: str) -> str:
    """The remote server's own words, when the MTA says where they start."""
    low = text.lower()
    for marker in (
        " said: ",
        " said:",
        "remote host said:",
        "the error that the other server returned was:",
        "smtp error from remote mail server after",
        "<<< ",
        "diagnostic-code: smtp;",
    ):
        pos = low.find(marker)
        if pos >= 0:
            return text[pos + len(marker) :].strip()
    return text


def fill_from_text(fact: Fact, text: str) -> None:
    """Set status/reply/hosts/IPs/command-independent fields from an error text."""
    text = strip_repeated_codes(text)
    fact.diagnostic = fact.diagnostic or text
    reply_text = reply_part(text)
    if not fact.status:
        fact.status = find_status(text) or _hash_status(text)
    if fact.reply_code is None:
        fact.reply_code = find_reply(reply_text, fact.status) or find_reply(text, fact.status)
    if not fact.remote_host:
        m = HOST_IP_RE.search(text)
        if m and "." in m.group(1) and not m.group(1)[0].isdigit() and "@" not in text[max(0, m.start() - 1) : m.start()]:
            fact.remote_host = m.group(1).lower().rstrip(".")
            fact.remote_ip = fact.remote_ip or valid_ip(m.group(2))
        else:
            m2 = REMOTE_IP_ONLY_RE.search(text)
            if m2:
                fact.remote_ip = fact.remote_ip or valid_ip(m2.group(1))
            m3 = TALKING_TO_RE.search(text)
            if m3 and "." in m3.group(1) and not m3.group(1)[0].isdigit():
                fact.remote_host = m3.group(1).lower()
    if not fact.sender_ip:
        fact.sender_ip = sender_ip_in(reply_text, fact.remote_ip)
    if not fact.sender_ip and "sender_ip_masked" not in fact.extra:
        masked = masked_ip_in(reply_text)
        if masked:
            fact.extra["sender_ip_masked"] = masked
            fact.extra["sender_ip_version"] = 6 if ":" in masked else 4


def masked_ip_in(text: str) -> str | None:
    """A masked IP address the reply names (the sender's, as sender_ip_in reads replies)."""
    for m in MASKED_IP_RE.finditer(text[:1500]):
        tok = m.group(1)
        if any(c in tok for c in "*×xX") or tok in ("[IP]", "$(_ipsrc)"):
            return tok
    return None


def _hash_status(text: str) -> str | None:
    m = re.search(r"\(#([245]\.\d{1,3}\.\d{1,3})\)", text)
    return m.group(1) if m else None


def sender_ip_in(reply: str, remote_ip: str | None) -> str | None:
    """An IP address the receiving server names in its reply is the sender's (Gmail, Microsoft, Yahoo)."""
    for rx in (BRACKET_IP_RE, BARE_IP_RE):
        for m in rx.finditer(reply[:1500]):
            ip = valid_ip(m.group(1))
            if ip and ip != remote_ip and not ip.startswith("127."):
                return ip
    return None


def header_addrs(value: str) -> list[str]:
    return [m.group(1).lower() for m in ADDR_RE.finditer(value or "")]
