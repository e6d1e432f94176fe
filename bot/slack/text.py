"""Slack message text in and out.

Slack escapes `&`, `<` and `>` and wraps links, mentions and channels in
`<...>` (https://docs.slack.dev/messaging/formatting-message-text). Pasted
bounces must be unescaped before analysis; text we post must be escaped so a
pasted `<!channel>` never pings anyone.
"""

from __future__ import annotations

import re

# <http://x|label>, <mailto:a@b|a@b>, <@U123>, <#C123|general>, <!here>, <!subteam^S1|@team>
_ANGLE = re.compile(r"<([^<>\n]*)>")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _replace_angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, sep, label = inner.partition("|")
    if target.startswith("@"):  # user mention: keep it readable
        return f"@{label or target[1:]}"
    if target.startswith("#"):  # channel
        return f"#{label or target[1:]}"
    if target.startswith("!"):  # special mention / subteam / date
        return label or f"@{target[1:].split('^', 1)[0]}"
    if target.startswith("mailto:"):
        return label or target[len("mailto:"):]
    if sep and label:
        # Auto-linked text: Slack keeps what was typed as the label.
        return label
    return target


def unescape_slack(text: str | None) -> str:
    """Slack message text -> what the user typed or pasted.

    Links and mentions are reduced to their visible part, then the three HTML
    entities Slack uses are decoded (`&amp;` last, so `&amp;lt;` stays `&lt;`).
    """
    if not text:
        return ""
    out = _ANGLE.sub(_replace_angle, text)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape_slack(text: str | None) -> str:
    """Plain text -> safe mrkdwn text (no mentions, links or broadcasts triggered)."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def strip_mentions(text: str | None, user_id: str | None = None) -> str:
    """Remove `<@U…>` mentions (only `user_id`'s when given) from raw Slack text."""
    if not text:
        return ""

    def repl(m: re.Match[str]) -> str:
        return "" if user_id is None or m.group(1) == user_id else m.group(0)

    return _MENTION.sub(repl, text).strip()


def mentions_user(text: str | None, user_id: str | None) -> bool:
    if not text or not user_id:
        return False
    return any(m.group(1) == user_id for m in _MENTION.finditer(text))


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """`text` cut to at most `limit` characters, marked when cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(marker))]
    # Never leave half of an HTML entity at the end.
    amp = cut.rfind("&", max(0, len(cut) - 6))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + marker
