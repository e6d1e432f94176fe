"""One validator for what users type: domains, IPs, selectors.

Shared by the CLI and Slack so both accept and reject the same things with the
same one-line messages.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SELECTOR = re.compile(r"^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63}){0,4}$")


MAX_INPUT_CHARS = 1024  # nothing a user types as a target is longer; refuse before any work
# Option-like first characters: ASCII hyphen and what Slack/macOS autocorrect make of `--`.
_OPTION_DASHES = ("-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212")


class InputError(ValueError):
    """Bad user input; str(exc) is the one-line message shown to the user."""


def shown(raw: str, limit: int = 60) -> str:
    """`raw` quoted for an error message: one line, at most `limit` characters."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def looks_like_option(text: str) -> bool:
    return text.lstrip().startswith(_OPTION_DASHES)


def _to_ascii(text: str) -> str:
    """IDNA (UTS #46 mapping, IDNA 2008 non-transitional, as browsers do) -> lower-case A-labels.

    ASCII labels are kept as they are (underscores are fine: _dmarc, _domainkey).
    Raises UnicodeError for names IDNA forbids.
    """
    try:
        import idna
    except ImportError:  # pragma: no cover - idna comes with aiohttp/yarl
        return text.encode("idna").decode("ascii").lower()
    try:
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
        return ".".join(
            lab.lower() if lab.isascii() else idna.alabel(lab).decode("ascii") for lab in mapped.split(".")
        )
    except idna.IDNAError as exc:
        raise UnicodeError(str(exc)) from exc


@dataclass(frozen=True)
class Normalized:
    value: str
    note: str = ""  # said to the user when the input was reduced/converted


def normalize_domain(raw: str) -> Normalized:
    """IDNA to punycode, strip a trailing dot, reduce `user@domain` or a URL to its host."""
    text = (raw or "").strip().strip("<>\"'")
    if not text:
        raise InputError("no domain given")
    if looks_like_option(text):
        raise InputError(f"{shown(raw)} looks like an option, not a domain")
    if len(text) > MAX_INPUT_CHARS:
        raise InputError(f"{shown(raw)} is too long for a domain name (253 characters at most)")
    note = ""
    # Slack turns links into <http://x|x> / <mailto:a@b|a@b>: keep the visible part.
    if "|" in text:
        text = text.split("|", 1)[1] or text.split("|", 1)[0]
    if "://" in text or text.lower().startswith("mailto:"):
        if text.lower().startswith("mailto:"):
            text = text[7:]
        else:
            host = urlsplit(text).hostname or ""
            if not host:
                raise InputError(f"no host in {shown(raw)}")
            note = f"'{raw.strip()}' is a URL: checking its host {host}"
            text = host
    if "@" in text:
        _local, _, host = text.rpartition("@")
        if not host:
            raise InputError(f"no domain after '@' in {shown(raw)}")
        note = note or f"'{raw.strip()}' is an address: checking its domain {host}"
        text = host
    text = text.rstrip(".")
    if "/" in text or any(c.isspace() for c in text) or looks_like_option(text):
        raise InputError(f"{shown(raw)} is not a domain name")
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise InputError(f"{text} is an IP address; use `mailcheck ip {text}`")
    try:
        ascii_name = text.lower() if text.isascii() else _to_ascii(text)
    except UnicodeError as exc:
        raise InputError(f"{shown(raw)} is not a valid internationalised domain name") from exc
    if ascii_name != text.lower() and not note:
        note = f"{text} is written as {ascii_name} in DNS"
    labels = ascii_name.split(".")
    if len(ascii_name) > 253:
        raise InputError(f"{shown(raw)} is too long for a domain name (253 characters at most)")
    if len(labels) < 2 or not all(_LABEL.match(lab) for lab in labels) or labels[-1].isdigit():
        raise InputError(f"{shown(raw)} is not a valid domain name")
    if not all(_punycode_ok(lab) for lab in labels):
        raise InputError(f"{shown(raw)} is not a valid internationalised domain name")
    return Normalized(ascii_name, note)


def _punycode_ok(label: str) -> bool:
    """An `xn--` label must decode (RFC 5891 §5.4); other labels are not checked here."""
    if not label.startswith("xn--"):
        return True
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return False
    return decoded.isprintable() and not decoded.isascii() and decoded.encode("punycode").decode("ascii") == label[4:]


def normalize_ip(raw: str) -> str:
    """Canonical text of an IPv4/IPv6 address (RFC 5952 for v6)."""
    text = (raw or "").strip().strip("[]")
    if not text:
        raise InputError("no IP address given")
    if looks_like_option(text):
        raise InputError(f"{shown(raw)} looks like an option, not an IP address")
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    if len(text) > 64 or "%" in text:  # no zone ids (fe80::1%eth0): not a target on the Internet
        raise InputError(f"{shown(raw)} is not an IPv4 or IPv6 address")
    port = _with_port((raw or "").strip())
    if port:
        raise InputError(f"{shown(raw)} includes a port: drop it and give the address alone ({port})")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InputError(f"{shown(raw)} is not an IPv4 or IPv6 address") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return str(addr.ipv4_mapped)
    return str(addr)


def _with_port(text: str) -> str | None:
    """The address in "192.0.2.10:25" or "[2001:db8::1]:25" (a copied host:port), else None."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    host = host.strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    # "2001:db8::25" parses whole as IPv6: only a bracketed IPv6 or an IPv4 can carry a port.
    if addr.version == 6 and not text.startswith("["):
        return None
    return str(addr)


def normalize_selector(raw: str) -> str:
    text = (raw or "").strip()
    if not text:
        raise InputError("no DKIM selector given")
    if looks_like_option(text):
        raise InputError(f"{shown(raw)} looks like an option, not a DKIM selector")
    if text.lower().endswith("._domainkey"):
        text = text[: -len("._domainkey")]
    if len(text) > 253 or not _SELECTOR.match(text):
        raise InputError(f"{shown(raw)} is not a valid DKIM selector")
    return text


def normalize_target(raw: str) -> Normalized:
    """A watch target: an IP address (canonical text) or a domain (normalize_domain)."""
    if is_ip(raw) and not looks_like_option(raw):
        return Normalized(normalize_ip(raw))
    return normalize_domain(raw)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return False
    return True
