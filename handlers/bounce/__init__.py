"""Bounce analysis: DSNs, NDR texts, bare SMTP replies and MTA log lines.

Public entry points (the bot and the CLI call only these):
- analyse_bounce(data, lang=...) -> Report(kind="bounce")
- looks_like_bounce(text) -> bool (cheap detector for Slack thread pastes)
- extract_followup_targets(report) -> {"sender_ips": [...], "sender_domains": [...]}
"""

from __future__ import annotations

from handlers.model import Report

from .detect import extract_followup_targets, looks_like_bounce
from .engine import analyse


def analyse_bounce(data: bytes | str, *, lang: str = "en") -> Report:
    """Explain a bounce. Synchronous, pure CPU, no network; never raises."""
    return analyse(data, lang)


__all__ = ["analyse_bounce", "extract_followup_targets", "looks_like_bounce"]
