"""Spam-folder diagnosis of a delivered message (`mailcheck message`, issue 9).

Public API:
- `diagnose_message(data, resolver, *, live=True, lang="en") -> Report`
- `looks_like_message(text) -> bool` (cheap; the Slack app's paste detector)

The engine (dnspython, dkimpy, authres) is imported on first use, so importing
the detector stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .detect import looks_like_message

if TYPE_CHECKING:
    from handlers.model import Report
    from handlers.net import Resolver


async def diagnose_message(
    data: bytes | str, resolver: Resolver | None, *, live: bool = True, lang: str = "en"
) -> Report:
    """Why did this delivered message land in spam? Never raises on any input."""
    from .engine import diagnose_message as _diagnose

    return await _diagnose(data, resolver, live=live, lang=lang)


__all__ = ["diagnose_message", "looks_like_message"]
