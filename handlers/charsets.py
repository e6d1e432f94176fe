"""Decoding of bytes whose charset is unknown or wrong, shared by bounce and message analysis.

Japanese mail arrives as ISO-2022-JP (JIS), Shift_JIS/CP932, EUC-JP or UTF-8,
often mislabelled; try them in the order that can't silently mis-decode.
"""

from __future__ import annotations

_ISO2022_ESC = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B", b"\x1b$(D", b"\x1b(I")


def guess_decode(data: bytes) -> str:
    """Decode bytes whose charset is unknown (or wrong): JIS escapes, UTF-8, CP932, EUC-JP."""
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
