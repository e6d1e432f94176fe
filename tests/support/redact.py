"""Transforms that turn a bounce into what people actually paste.

Admins mask addresses, hosts and IPs before pasting a bounce into a shared channel,
Slack escapes what they paste, and mail clients re-wrap long lines. The analyser must
answer the same reason and provider for the transformed text as for the original: these
transforms let a test run a whole corpus through each way of masking.

Every transform works on bytes (corpus files are raw messages, perhaps in 8-bit
charsets) and touches only ASCII tokens; masks are written in UTF-8 as a paste would be.
Choices between masking forms are drawn from a seeded random generator, so a run is
reproducible.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# What admins write instead of the part they hide (seen in real pastes: mailing lists,
# Q&A sites, support tickets).
LOCAL_MASKS = ["***", "xxx", "×××", "...", "XXXXX", "*****", "user"]
ADDRESS_MASKS = ["<...>", "(redacted)", "***", "xxx@xxx", "<email>", "[email]", "***@***"]
DOMAIN_MASKS = ["EXAMPLE.jp", "example.com", "xxx.xx", "***.jp", "domain.tld"]
IPV4_MASKS = ["*.*.*.*", "x.x.x.x", "[IP]", "xxx.xxx.xxx.xxx", "$(_ipsrc)", "***.***.***.***", "IP"]

_ROBOTS = {b"mailer-daemon", b"postmaster", b"mailer_daemon", b"noreply", b"no-reply", b"bounce", b"bounces"}
_ADDR = re.compile(
    rb"(?<![\w.+\-=])([A-Za-z0-9_][A-Za-z0-9._%+\-=']{0,63})@([A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.){1,8}[A-Za-z]{2,24})(?![\w-])"
)
_IPV4 = re.compile(rb"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.]|\.\d)")
_IPV6 = re.compile(rb"(?<![\w:.])((?:[0-9A-Fa-f]{1,4}:){3,7}(?::?[0-9A-Fa-f]{1,4}))(?![\w:.])")
# A host name whose first label holds digits ("mx12.", "mta7-1.", "BY2PR04MB123."): the
# label admins turn into "mx*" or "***".
_NUMBERED_HOST = re.compile(
    rb"(?<![\w.\-@])([A-Za-z][A-Za-z\-]{0,20})(\d[\w\-]{0,40})\.((?:[A-Za-z0-9\-]{1,63}\.){1,6}[A-Za-z]{2,24})(?![\w-])"
)
# Postfix log recipient: to=<a@b>, orig_to=<a@b>.
_LOG_TO = re.compile(rb"\b(to|orig_to)=<[^<>\s,]{1,320}>")

# Lines where a token is structure, not data: masking a boundary or a Content-ID would
# test the MIME parser's luck, not the analyser.
_STRUCTURAL = re.compile(rb"(?i)^(?:content-type|content-id|boundary|--|\s+boundary=)")


def _keep_line(line: bytes) -> bool:
    return bool(_STRUCTURAL.match(line)) or b"boundary=" in line


def _per_line(data: bytes, fn: Callable[[bytes], bytes]) -> bytes:
    out = []
    for line in data.split(b"\n"):
        out.append(line if _keep_line(line) else fn(line))
    return b"\n".join(out)


def _base64_part(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of base64-encoded bodies: left alone (masking them would break decoding)."""
    ranges = []
    for m in re.finditer(rb"(?im)^content-transfer-encoding:\s*base64\s*$", data):
        start = data.find(b"\n\n", m.end())
        if start < 0:
            continue
        end = data.find(b"\n--", start)
        ranges.append((start, end if end >= 0 else len(data)))
    return ranges


def _outside_base64(data: bytes, fn: Callable[[bytes], bytes]) -> bytes:
    ranges = _base64_part(data.replace(b"\r\n", b"\n"))
    if not ranges:
        return _per_line(data, fn)
    data = data.replace(b"\r\n", b"\n")
    out, pos = [], 0
    for a, b in ranges:
        out.append(_per_line(data[pos:a], fn))
        out.append(data[a:b])
        pos = b
    out.append(_per_line(data[pos:], fn))
    return b"".join(out)


class Redactor:
    """One masking style: which fields to hide and how (each choice drawn per token)."""

    def __init__(
        self,
        seed: int,
        *,
        local: bool = True,
        whole_address: float = 0.0,
        domain: float = 0.0,
        ipv4: bool = True,
        ipv6: bool = True,
        hosts: bool = False,
        log_to_empty: bool = False,
        own_domain: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.local = local
        self.whole_address = whole_address
        self.domain = domain
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.hosts = hosts
        self.log_to_empty = log_to_empty
        self.own_domain = own_domain
        # One address or IP is masked the same way wherever it appears, as a search and
        # replace in an editor does.
        self._seen: dict[bytes, bytes] = {}

    def _same(self, m: re.Match[bytes], fn: Callable[[re.Match[bytes]], bytes]) -> bytes:
        key = m.group(0)
        if key not in self._seen:
            self._seen[key] = fn(m)
        return self._seen[key]

    def _pick(self, choices: list[str]) -> bytes:
        return self.rng.choice(choices).encode("utf-8")

    def _addr(self, m: re.Match[bytes]) -> bytes:
        local, domain = m.group(1), m.group(2)
        if local.lower() in _ROBOTS:
            return m.group(0)  # MAILER-DAEMON@ names no person: nobody hides it
        if self.rng.random() < self.whole_address:
            # Different recipients get different masks while any are left: identical
            # masks make two recipients one, and no reader could tell them apart either.
            free = [x for x in ADDRESS_MASKS if x.encode("utf-8") not in self._seen.values()]
            return self._pick(free or ADDRESS_MASKS)
        if self.rng.random() < self.domain:
            domain = self._pick(DOMAIN_MASKS)
        if self.local:
            local = self._pick(LOCAL_MASKS)
        return local + b"@" + domain

    def _ipv4(self, m: re.Match[bytes]) -> bytes:
        style = self.rng.random()
        if style < 0.3:  # keep the network, hide the host part
            return m.group(1) + b"." + m.group(2) + b"." + m.group(3) + b".***"
        if style < 0.45:
            return m.group(1) + b"." + m.group(2) + b".xxx.xxx"
        return self._pick(IPV4_MASKS)

    def _ipv6(self, m: re.Match[bytes]) -> bytes:
        groups = m.group(1).split(b":")
        keep = max(1, len(groups) - self.rng.choice([1, 2, 4]))
        return b":".join(groups[:keep] + [b"***"] * (len(groups) - keep))

    def _host(self, m: re.Match[bytes]) -> bytes:
        # "mx12.hotmail.com" -> "mx*.hotmail.com" / "***.hotmail.com": the label
        # that names one machine goes, the domain stays (admins hide their own machines).
        return (m.group(1) + b"*" if self.rng.random() < 0.6 else b"***") + b"." + m.group(3)

    def line(self, line: bytes) -> bytes:
        if self.log_to_empty:
            line = _LOG_TO.sub(lambda m: m.group(1) + b"=", line)
        line = _ADDR.sub(lambda m: self._same(m, self._addr), line)
        if self.ipv6:
            line = _IPV6.sub(lambda m: self._same(m, self._ipv6), line)
        if self.ipv4:
            line = _IPV4.sub(lambda m: self._same(m, self._ipv4), line)
        if self.hosts:
            line = _NUMBERED_HOST.sub(lambda m: self._same(m, self._host), line)
        return line

    def __call__(self, data: bytes) -> bytes:
        self._seen = {}
        if self.own_domain:
            data = self._hide_own_domain(data)
        return _outside_base64(data, self.line)

    def _hide_own_domain(self, data: bytes) -> bytes:
        """The sender's own domain (the notice's To:) replaced everywhere, hosts included,
        by one stand-in ("EXAMPLE.jp"), as an admin hides their company before pasting."""
        m = re.search(rb"(?im)^to:[^\n]{0,200}?@([A-Za-z0-9.\-]{3,100}\.[A-Za-z]{2,24})", data)
        if not m:
            return data
        own = re.escape(m.group(1))
        mask = self._pick(DOMAIN_MASKS)
        rx = re.compile(rb"(?i)(?<![\w\-])" + own + rb"(?![\w\-])")
        return _outside_base64(data, lambda line: rx.sub(mask, line))


def styles(seed: int = 12) -> dict[str, Redactor]:
    """The masking styles a corpus is run through (each seeded from `seed`)."""
    return {
        "local-parts": Redactor(seed, local=True),
        "addresses-and-hosts": Redactor(seed + 1, whole_address=0.5, hosts=True),
        "own-domain": Redactor(seed + 2, own_domain=True, hosts=True, log_to_empty=True),
        "everything": Redactor(seed + 3, whole_address=0.3, domain=0.3, hosts=True, log_to_empty=True),
    }


# ------------------------------------------------------------------ Slack escaping

_URL = re.compile(rb"https?://[^\s<>\"')\]]{1,500}")


def slack_escape(data: bytes) -> bytes:
    """What Slack's API hands a bot for pasted text: HTML entities, link and mailto markup."""
    text = data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    text = _ADDR.sub(lambda m: b"<mailto:" + m.group(0) + b"|" + m.group(0) + b">", text)
    text = _URL.sub(lambda m: b"<" + m.group(0) + b"|" + m.group(0) + b">", text)
    return text


# -------------------------------------------------------------- re-wrapping

def rewrap(data: bytes, width: int = 60) -> bytes:
    """A mail client or chat window re-wrapping long lines of a plain-text paste."""
    out = []
    for line in data.split(b"\n"):
        while len(line) > width:
            margin = len(line) - len(line.lstrip(b" "))
            cut = line.rfind(b" ", margin + 1, width)
            if cut <= margin:
                break  # one long word (a URL): left as it is
            out.append(line[:cut])
            line = b"    " + line[cut + 1 :]
        out.append(line)
    return b"\n".join(out)


def indent(data: bytes, prefix: bytes = b"  ") -> bytes:
    """A paste indented (a quote, or a code block's margin)."""
    return b"\n".join(prefix + ln if ln.strip() else ln for ln in data.split(b"\n"))
