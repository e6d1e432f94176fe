"""What the MTA log decoders share: `key=value, ...` fields and `relay=host[ip]:port`."""

from __future__ import annotations

import re

_KV = re.compile(r"(?:^|,\s)([a-z_]{2,12})=")
# relay=host[ip]:port; the ip may be masked ("[*.*.*.*]", "[IP]", "[$(_ipsrc)]").
RELAY = re.compile(r"^\[?([^\[\]\s:]{1,255})\]?(?:\.)?\s?\[([^\[\]\s]{1,45})\](?::(\d{1,5}))?")


def split_kv(rest: str, last: str) -> dict[str, str]:
    """Split `a=1, b=<x>, status=...` keeping everything after `last=` as one value."""
    out: dict[str, str] = {}
    cut = rest.find(f"{last}=")
    tail = ""
    if cut >= 0:
        tail = rest[cut + len(last) + 1 :]
        rest = rest[:cut]
    marks = [(m.start(), m.end(), m.group(1)) for m in _KV.finditer(rest)]
    for n, (_, end, key) in enumerate(marks):
        stop = marks[n + 1][0] if n + 1 < len(marks) else len(rest)
        out[key] = rest[end:stop].strip().rstrip(",").strip()
    if cut >= 0:
        out[last] = tail.strip()
    return out
