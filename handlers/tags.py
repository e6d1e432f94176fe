"""Parsing of `tag=value; tag=value` records (DMARC, DKIM, MTA-STS, TLS-RPT, BIMI)."""

from __future__ import annotations


class TagError(ValueError):
    pass


def parse_tags(record: str, *, lower_keys: bool = True) -> dict[str, str]:
    """RFC 6376 §3.2 tag-list: `t=v; t=v`, whitespace around tokens ignored.

    Duplicate tags are an error (DKIM §3.2, DMARC follows the same grammar).
    """
    tags: dict[str, str] = {}
    for part in record.split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise TagError(f"'{part}' is not a tag=value pair")
        key, _, value = part.partition("=")
        key = key.strip()
        if lower_keys:
            key = key.lower()
        if not key or not all(c.isalnum() or c == "_" for c in key):
            raise TagError(f"bad tag name '{key}'")
        if key in tags:
            raise TagError(f"tag '{key}' appears twice")
        tags[key] = value.strip()
    return tags
