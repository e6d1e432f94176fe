"""Digest messages: what a target's result looks like in Block Kit, in the channel's language,
split under Slack's limits. Pure functions of the results (bot/digest.py runs and posts)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.storage import DigestJob, Watch
from handlers.digest_diff import Change, describe, status_line
from handlers.digest_reports import (
    WINDOW_DAYS,
    reports_status_line,
)
from handlers.model import Report
from knowledge.digest_texts import digest_text

log = logging.getLogger(__name__)

MAX_BLOCKS = 50  # Slack: blocks per message
MAX_SECTION_CHARS = 3000  # Slack: section text
MAX_MESSAGE_CHARS = 11000  # total block text per message (msg_blocks_too_long ~13k in practice)
RECHECK_ACTION_ID = "mailcheck_recheck"
SEVERITY_ICON = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:",
                 "ok": ":white_check_mark:", "unknown": ":grey_question:"}


@dataclass(frozen=True)
class AuditError:
    """Why a target could not be checked: a digest_texts.yaml key (error_*) and its parameters."""

    key: str
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str = "en") -> str:
        return digest_text(f"error_{self.key}", lang, **dict(self.params))

    def __str__(self) -> str:
        return self.text("en")


@dataclass
class TargetResult:
    watch: Watch
    # A report this run audited, or the Report.to_dict() of one another worker (or an
    # earlier batch) audited within the reuse window: the digest reads either.
    report: Report | dict[str, Any] | None
    ok: bool  # something was determined (else: could not check)
    changes: list[Change] = field(default_factory=list)
    baseline: bool = False  # no previous snapshot: first digest for this target
    previous_at: datetime | None = None
    error: AuditError | None = None
    reports: dict[str, Any] | None = None  # receiver reports of the last WINDOW_DAYS (digest_reports)



# -- language ------------------------------------------------------------------------------
LANGS = ("en", "ja")


def default_lang() -> str:
    lang = (os.environ.get("MAILCHECK_LANG") or "en").strip().lower()
    return lang if lang in LANGS else "en"


# -- rendering -----------------------------------------------------------------------------
def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(dt: datetime | None, tz: str, lang: str = "en") -> str:
    if dt is None:
        return digest_text("since_last_digest", lang)
    from zoneinfo import ZoneInfo

    try:
        local = dt.astimezone(ZoneInfo(tz))
    except Exception:
        local = dt.astimezone(UTC)
    return local.strftime("%Y-%m-%d %H:%M %Z")


def _cap(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 2] + "…"


def _section(text: str, target: str | None = None, lang: str = "en") -> dict[str, Any]:
    from slack_sdk.models.blocks import ButtonElement, MarkdownTextObject, SectionBlock

    accessory = (
        ButtonElement(text=digest_text("button_recheck", lang), action_id=RECHECK_ACTION_ID, value=target[:2000])
        if target else None
    )
    block = SectionBlock(text=MarkdownTextObject(text=_cap(text)), accessory=accessory)
    return dict(block.to_dict())


def _header(text: str) -> dict[str, Any]:
    from slack_sdk.models.blocks import HeaderBlock

    return dict(HeaderBlock(text=text[:150]).to_dict())


def _context(text: str) -> dict[str, Any]:
    from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

    return dict(ContextBlock(elements=[MarkdownTextObject(text=_cap(text, 2900))]).to_dict())


def _divider() -> dict[str, Any]:
    from slack_sdk.models.blocks import DividerBlock

    return dict(DividerBlock().to_dict())


def _lines_to_sections(lines: list[str], target: str | None = None, lang: str = "en") -> list[dict[str, Any]]:
    """Pack lines into sections of at most MAX_SECTION_CHARS (a line longer than that is cut)."""
    out: list[dict[str, Any]] = []
    buf: list[str] = []
    size = 0
    for line in lines:
        line = _cap(line, MAX_SECTION_CHARS - 10)
        if buf and size + len(line) + 1 > MAX_SECTION_CHARS - 10:
            out.append(_section("\n".join(buf), target, lang))
            buf, size = [], 0
        buf.append(line)
        size += len(line) + 1
    if buf:
        out.append(_section("\n".join(buf), target, lang))
    return out


def render_digest(
    job: DigestJob, results: list[TargetResult], *, now: datetime | None = None, lang: str = "en"
) -> list[dict[str, Any]]:
    """Block Kit messages ({"text", "blocks"}) for one digest in `lang`, split within Slack's limits."""
    now = now or datetime.now(UTC)
    lang = lang if lang in LANGS else "en"
    if not results:  # every watch of the job was removed meanwhile: nothing to say
        return []

    def t(key: str, **params: Any) -> str:
        return digest_text(key, lang, **params)

    tz = job.watches[0].tz if job.watches else "UTC"
    changed = [r for r in results if r.changes]
    baseline = [r for r in results if r.baseline]
    failed = [r for r in results if not r.ok]
    n = len(results)
    prev_times = [r.previous_at for r in results if r.previous_at is not None]
    since = _when(max(prev_times), tz, lang) if prev_times else None
    title = t("title", n=n)
    blocks: list[dict[str, Any]] = [_header(title)]
    fallback: list[str] = []
    n_changes = sum(len(r.changes) for r in changed)
    if changed:
        summary = t("what_changed", since=since or t("since_last_digest"),
                    changes=t("n_changes", n=n_changes), targets=t("n_targets", n=len(changed)))
        blocks.append(_section(summary, lang=lang))
        fallback.append(t("fallback_changes", changes=n_changes, targets=len(changed)))
        for r in sorted(changed, key=lambda x: min(_rank(c.severity) for c in x.changes)):
            lines = [f"*{_esc(r.watch.target)}*"]
            lines += [f"{SEVERITY_ICON.get(c.severity, '')} {_esc(describe(c, lang))}" for c in r.changes]
            blocks.extend(_lines_to_sections(lines, r.watch.target, lang))
        blocks.append(_divider())
    elif prev_times:
        blocks.append(_section(t("no_changes", since=since), lang=lang))
        fallback.append(t("fallback_no_changes", since=since))
    if baseline:
        names = ", ".join(_esc(r.watch.target) for r in baseline)
        blocks.append(_context(t("baseline", names=names)))
        if not fallback:
            fallback.append(t("fallback_baseline"))
    # Status: problems one per line (with a Re-check button), OK targets folded into one line.
    problems: list[tuple[str, TargetResult, str]] = []
    fine: list[TargetResult] = []
    for r in results:
        if not r.ok or r.report is None:
            continue
        worst, text = status_line(r.report, lang)
        if worst == "ok" and not r.changes:
            fine.append(r)
        else:
            problems.append((worst, r, text))
    problems.sort(key=lambda p: _rank(p[0]))
    status_blocks: list[dict[str, Any]] = []
    for worst, r, text in problems:
        status_blocks.append(
            _section(f"{SEVERITY_ICON.get(worst, '')} *{_esc(r.watch.target)}*: {_esc(text)}", r.watch.target, lang)
        )
    if fine:
        ok_names = [_esc(r.watch.target) for r in fine]
        line = f"{SEVERITY_ICON['ok']} " + t("ok_targets", n=len(fine), names=", ".join(ok_names))
        if len(line) > MAX_SECTION_CHARS - 10:
            shown: list[str] = []
            size = 40
            for name in ok_names:
                if size + len(name) + 2 > MAX_SECTION_CHARS - 60:
                    break
                shown.append(name)
                size += len(name) + 2
            line = (f"{SEVERITY_ICON['ok']} " + t("ok_targets", n=len(fine), names=", ".join(shown))
                    + t("ok_more", n=len(fine) - len(shown)))
        status_blocks.append(_section(line, lang=lang))
    if failed:
        lines = [f"{SEVERITY_ICON['unknown']} "
                 + t("not_checked_line", target=_esc(r.watch.target),
                     error=_esc((r.error or AuditError("no_answers")).text(lang)))
                 for r in failed]
        status_blocks.extend(_lines_to_sections(lines, lang=lang))
    if status_blocks:
        if changed or baseline:
            blocks.append(_section(t("status_heading"), lang=lang))
        blocks.extend(status_blocks)
    with_reports = [r for r in results if r.reports]
    if with_reports:
        blocks.append(_section(t("reports_heading", days=WINDOW_DAYS), lang=lang))
        blocks.extend(_lines_to_sections(
            [f"*{_esc(r.watch.target)}*: {_esc(reports_status_line(r.reports or {}, lang))}" for r in with_reports],
            lang=lang))
    blocks.append(_context(t("footer", when=_when(now, tz, lang))))
    text = t("fallback", title=title, summary="; ".join(fallback) if fallback else t("fallback_status"))
    return split_messages(blocks, text, lang)


def _rank(sev: str) -> int:
    return {"critical": 0, "warning": 1, "unknown": 2, "info": 3, "ok": 4}.get(sev, 5)


def _block_chars(block: dict[str, Any]) -> int:
    total = 0
    text = block.get("text")
    if isinstance(text, dict):
        total += len(str(text.get("text", "")))
    for el in block.get("elements") or []:
        if isinstance(el, dict):
            total += len(str(el.get("text", "")))
    return total + 100


def split_messages(blocks: list[dict[str, Any]], text: str, lang: str = "en") -> list[dict[str, Any]]:
    """Pack blocks into messages of <= MAX_BLOCKS-2 blocks and <= MAX_MESSAGE_CHARS of text."""
    pages: list[list[dict[str, Any]]] = [[]]
    size = 0
    for block in blocks:
        chars = _block_chars(block)
        if pages[-1] and (len(pages[-1]) >= MAX_BLOCKS - 2 or size + chars > MAX_MESSAGE_CHARS):
            pages.append([])
            size = 0
        pages[-1].append(block)
        size += chars
    total = len(pages)
    out = []
    for i, page in enumerate(pages, 1):
        if total > 1:
            page = [*page, _context(digest_text("part", lang, i=i, total=total))]
        label = text if i == 1 else digest_text("fallback_part", lang, text=text, i=i, total=total)
        out.append({"text": _cap(label, 3000), "blocks": page})
    return out


