"""Turn whatever was pasted or uploaded into text we can scan safely.

- caps the input size (SPEC: any paste is answered within 10 s);
- decodes bytes in the charsets Japanese mail uses (ISO-2022-JP, Shift_JIS,
  EUC-JP) as well as UTF-8, never raising;
- undoes Slack's mangling (`&lt;`, `<mailto:a@b|a@b>`, `<http://x|x>`).
"""

from __future__ import annotations

import re

from handlers.charsets import guess_decode, to_utf8

MAX_INPUT_BYTES = 5 * 1024 * 1024
MAX_LINE = 8000  # longer lines are cut before any regex sees them

_SLACK_LINK = re.compile(r"<(?:mailto:|https?://|tel:)([^<>|\s]{1,2000})\|([^<>\n]{0,2000})>")
_SLACK_BARE = re.compile(r"<((?:https?://)[^<>|\s]{1,2000})>")
_SLACK_MAILTO = re.compile(r"<mailto:([^<>|\s]{1,500})>")


def human_size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def decode_bytes(data: bytes) -> str:
    """Best-effort decoding of a byte paste (not a MIME message); UTF-16/32 included."""
    return guess_decode(data)


def cap(data: bytes | str) -> tuple[bytes | str, bool]:
    """The input as the parsers read it, cut to MAX_INPUT_BYTES (characters for str). True when cut.

    UTF-16/32 bytes (a file Windows saved as "Unicode") are first re-encoded as
    UTF-8: every later step (mbox split, MIME parse, line scans) reads ASCII-compatible bytes.
    """
    if isinstance(data, bytes):
        data = to_utf8(data)
    if len(data) > MAX_INPUT_BYTES:
        return data[:MAX_INPUT_BYTES], True
    return data, False


def unslack(text: str) -> str:
    """Undo Slack's link markup and HTML entities (only when present)."""
    if "<mailto:" in text or "|" in text or "<http" in text:
        text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
        # Outlook's plain text writes "a@b<mailto:a@b>": the link repeats the address.
        text = _SLACK_MAILTO.sub(
            lambda m: "" if m.string.endswith(m.group(1), 0, m.start()) else m.group(1), text
        )
        if "&lt;" in text or "&gt;" in text:
            # In a Slack paste a bare <http://…> is a link Slack made, not text.
            text = _SLACK_BARE.sub(lambda m: m.group(1), text)
    if "&lt;" in text or "&gt;" in text or "&amp;" in text:
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if "```" in text:
        text = text.replace("```", "\n")
    return text


def clean_lines(text: str) -> list[str]:
    """Split into lines, cutting very long ones so later scans stay cheap."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [ln if len(ln) <= MAX_LINE else ln[:MAX_LINE] for ln in lines]
