"""One answer per slash command or button click, however often it arrives.

Slack may deliver an invocation again (a resend with `X-Slack-Retry-Num`, also
mirrored in Socket Mode), and a captured signed request can be replayed within
the 5-minute signature window. Each invocation is claimed once, like events
(`Runtime.claim`: this process first, then the shared store, so replicas agree):
a duplicate is acked but runs nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any


def invocation_key(kind: str, body: dict[str, Any], req: Any) -> str:
    """A stable id of one invocation: Slack's `trigger_id` (a new one per slash command
    and per click; a retry or a replayed request carries the same one), else a hash of
    the signed timestamp and the raw body (what a replay repeats byte for byte)."""
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger.strip():
        return f"{kind}:{trigger.strip()[:100]}"
    raw = str(getattr(req, "raw_body", "") or "")
    headers = getattr(req, "headers", None) or {}
    ts = headers.get("x-slack-request-timestamp") or [""]
    stamp = ts[0] if isinstance(ts, list) and ts else str(ts)
    return f"{kind}:h:" + hashlib.sha256(f"{stamp}:{raw}".encode()).hexdigest()
