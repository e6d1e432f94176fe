"""Decoding the charsets Japanese (and other) mail uses, never raising.

Python's codecs cover ISO-2022-JP, Shift_JIS and EUC-JP, but real mail uses the
vendor supersets under the standard names: "Shift_JIS" bodies contain CP932
characters (①, ㈱, NEC/IBM extensions), "ISO-2022-JP" often carries the same
extensions (what Microsoft calls CP50220/CP50221) and "EUC-JP" may be
EUC-JIS-2004. So each label maps to a list of codecs tried strictly in order,
the last one with errors="replace".
"""

from __future__ import annotations

import codecs
import email.header
import re

from handlers.charsets import guess_decode

_ALIASES: dict[str, tuple[str, ...]] = {
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "ms_kanji": ("cp932",),
    "windows-31j": ("cp932",),
    "cp932": ("cp932",),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_2", "iso2022_jp_3"),
    "iso-2022-jp-2": ("iso2022_jp_2", "iso2022_jp_2004"),
    "iso-2022-jp-3": ("iso2022_jp_3", "iso2022_jp_2004"),
    "csiso2022jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004"),
    "euc-jp": ("euc_jp", "euc_jis_2004", "cp932"),
    "x-euc-jp": ("euc_jp", "euc_jis_2004"),
    "eucjp": ("euc_jp", "euc_jis_2004"),
    "utf8": ("utf-8",),
    "us-ascii": ("utf-8", "cp1252"),  # mislabelled 8-bit text is common
    "ascii": ("utf-8", "cp1252"),
    "iso-8859-1": ("cp1252",),
    "latin1": ("cp1252",),
    "ks_c_5601-1987": ("cp949",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
}



def _codecs_for(charset: str | None) -> list[str]:
    label = (charset or "").strip().strip('"').lower()
    if not label:
        return []
    names = list(_ALIASES.get(label, ()))
    if not names:
        try:
            names = [codecs.lookup(label).name]
        except (LookupError, ValueError):
            names = []
    return names


def decode(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset (and its vendor supersets); guess when that fails."""
    names = _codecs_for(charset)
    for enc in names:
        try:
            return data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    if names:
        guessed = guess_decode(data)
        if "\ufffd" not in guessed:
            return guessed
        try:
            return data.decode(names[-1], "replace")
        except LookupError:
            pass
    return guess_decode(data)


# An encoded word, bounded so a hostile header can't make the regex work hard.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]{0,4000})\?=")


def decode_header_value(value: object) -> str:
    """Decode RFC 2047 encoded words (also inside quotes, as Japanese mailers write them).

    Raw 8-bit header bytes (carried as surrogate escapes by the email package)
    are decoded with the same guesses as a body.
    """
    if value is None:
        return ""
    text = str(value)[:20000]
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = guess_decode(text.encode("utf-8", "surrogateescape"))
    if "=?" not in text:
        return " ".join(text.split())
    out: list[str] = []
    pos = 0
    pending: list[tuple[bytes, str]] = []  # adjacent encoded words share one decode (split multibyte chars)

    def flush() -> None:
        if not pending:
            return
        charset = pending[0][1]
        blob = b"".join(p[0] for p in pending)
        out.append(decode(blob, charset))
        pending.clear()

    for m in _ENCODED_WORD.finditer(text):
        between = text[pos : m.start()]
        charset = m.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        try:
            raw = email.header.decode_header(m.group(0))[0][0]
        except Exception:
            raw = m.group(0).encode("ascii", "replace")
        blob = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        if between.strip() == "" and pending and pending[0][1].lower() == charset.lower():
            pending.append((blob, charset))
        else:
            flush()
            if between.strip() or not out:
                out.append(between)
            pending.append((blob, charset))
        pos = m.end()
    flush()
    out.append(text[pos:])
    return " ".join("".join(out).split())


def rfc2231_value(param: object) -> str:
    """A MIME parameter value: plain, RFC 2231 (charset, language, value) or encoded words."""
    if isinstance(param, tuple) and len(param) == 3:
        charset, _lang, value = param
        if isinstance(value, bytes):
            raw = value
        else:
            text = str(value or "")
            try:
                raw = text.encode("latin-1")
            except UnicodeEncodeError:
                raw = text.encode("utf-8", "surrogateescape")
        return decode(raw, charset or None)
    return decode_header_value(param)
