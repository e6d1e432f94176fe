"""Decoding of bytes whose charset is unknown or wrong, shared by bounce and message analysis.

Japanese mail arrives as ISO-2022-JP (JIS), Shift_JIS/CP932, EUC-JP or UTF-8,
often mislabelled; try them in the order that can't silently mis-decode.

Pasted and uploaded files may also be UTF-16 or UTF-32: Windows tools write
them (Notepad's "Unicode", PowerShell 5's `>` and `Out-File`, Outlook's
"Save as Unicode text"), with a byte order mark or without one.
"""

from __future__ import annotations

import codecs

_ISO2022_ESC = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B", b"\x1b$(D", b"\x1b(I")

# UTF-32 first: its little-endian BOM starts with UTF-16's (FF FE).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SAMPLE = 4096  # bytes looked at to tell BOM-less UTF-16/32 (a multiple of 4)
_UNIT = {"utf-16-le": 2, "utf-16-be": 2, "utf-32-le": 4, "utf-32-be": 4}


def wide_encoding(data: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) when `data` is UTF-16 or UTF-32 text, else None."""
    found = _wide(data)
    return None if found is None else (found[0], found[1])


def decode_wide(data: bytes) -> str | None:
    """The text of UTF-16/32 bytes (BOM removed), or None when `data` is not UTF-16/32."""
    found = _wide(data)
    return None if found is None else found[2]


def to_utf8(data: bytes) -> bytes:
    """UTF-16/32 input re-encoded as UTF-8 (what every parser here reads); other bytes as they are."""
    text = decode_wide(data)
    return data if text is None else text.encode("utf-8")


def _wide(data: bytes) -> tuple[str, int, str] | None:
    """(codec, BOM length, text) when `data` is UTF-16 or UTF-32 text, else None.

    With a BOM (Unicode 15 section 23.8) the BOM decides. Without one, the pattern
    of NUL bytes does: text that is partly ASCII (every bounce and message is: SMTP
    codes, header names) has a NUL in the high half of most ASCII code units and
    almost nowhere else, while 8-bit charsets and UTF-8 text have no NUL at all. A
    candidate must then decode strictly and read as text, so binary data is left alone.
    """
    for bom, bom_enc in _BOMS:
        if data.startswith(bom):
            text = _as_text(data[len(bom) :], bom_enc)
            return None if text is None else (bom_enc, len(bom), text)
    sample = data[:_SAMPLE]
    if b"\x00" not in sample:
        return None
    sample = sample[: len(sample) - len(sample) % 4]
    quads = len(sample) // 4
    if quads < 2:
        return None
    z = [sample[k::4].count(0) for k in range(4)]  # NUL bytes at each position mod 4
    enc: str | None = None
    # UTF-32: the top byte of every unit is NUL (U+10FFFF at most), the next one nearly
    # always (outside the BMP only), the third for ASCII.
    if z[3] == quads and z[2] * 10 >= quads * 9 and z[1] * 4 >= quads and z[0] * 50 <= quads:
        enc = "utf-32-le"
    elif z[0] == quads and z[1] * 10 >= quads * 9 and z[2] * 4 >= quads and z[3] * 50 <= quads:
        enc = "utf-32-be"
    else:
        even, odd, half = z[0] + z[2], z[1] + z[3], 2 * quads
        if odd * 4 >= half and even * 8 <= odd:
            enc = "utf-16-le"
        elif even * 4 >= half and odd * 8 <= even:
            enc = "utf-16-be"
    if enc is None:
        return None
    text = _as_text(data, enc)
    return None if text is None else (enc, 0, text)


def _as_text(body: bytes, enc: str) -> str | None:
    """The decoded text if it decodes strictly and has almost no control characters.

    A paste cut at a size limit may end inside a code unit or a surrogate pair:
    that tail is dropped, nothing else is forgiven.
    """
    unit = _UNIT[enc]
    whole = body[: len(body) - len(body) % unit]
    try:
        text = whole.decode(enc)
    except UnicodeDecodeError as exc:
        if exc.start < len(whole) - 4:
            return None
        text = whole[: exc.start].decode(enc)
    sample = text[:_SAMPLE]
    controls = sum(1 for ch in sample if (ch < " " and ch not in "\t\n\r\f\v") or "\x7f" <= ch <= "\x9f")
    return text if controls * 100 <= len(sample) else None


def guess_decode(data: bytes) -> str:
    """Decode bytes whose charset is unknown (or wrong): UTF-16/32, JIS escapes, UTF-8, CP932, EUC-JP."""
    wide = decode_wide(data)
    if wide is not None:
        return wide
    if b"\x1b" in data and any(e in data for e in _ISO2022_ESC):
        for enc in ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004"):
            try:
                return data.decode(enc)
            except UnicodeDecodeError:
                continue
        return data.decode("iso2022_jp_ext", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for enc in ("cp932", "euc_jp"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp1252", "replace") if _mostly_latin(data) else data.decode("utf-8", "replace")


def _mostly_latin(data: bytes) -> bool:
    sample = data[:4096]
    high = sum(1 for b in sample if b >= 0x80)
    return high * 10 < max(len(sample), 1)


# Control bytes no text encoding of mail uses: C0 controls other than tab, LF, FF, CR and
# ESC (ISO-2022-JP switches character sets with ESC sequences), and NUL.
_BINARY_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27)) + b"\x7f"


def looks_binary(data: bytes, sample: int = 65536) -> bool:
    """Is this a binary file (an image, an archive, random bytes) rather than text in
    any charset? Text decoded from UTF-16/32 arrives here as UTF-8, so NULs are binary."""
    head = data[:sample]
    if not head:
        return False
    controls = sum(head.count(b) for b in _BINARY_BYTES)
    return controls * 100 > len(head) or b"\x00" in head
