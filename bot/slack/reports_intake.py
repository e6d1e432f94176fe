"""Receiver reports shared in Slack: a DMARC aggregate / failure report or a TLS-RPT
file (`.xml`, `.xml.gz`, `.zip`, `.json`, `.json.gz`, or the report email itself as
`.eml`) posted in a channel or DM the bot is in gets a summary in its thread, and
`/mailcheck reports` answers for the latest such file in the channel.

The file is downloaded the same way as a shared bounce (`flows.download_file`: only
Slack's hosts get the token, size-capped), parsed by the receiver-report engine,
stored with de-duplication (bot/storage/reports.py, source `upload`: the same report
already read from the mailbox is not counted twice) and summarised through the one
render path (`flows.present`), with "new sources" measured against what this
workspace had stored for the domain before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bot.slack.messages import text

if TYPE_CHECKING:
    from bot.slack.flows import Origin
    from bot.slack.runtime import Runtime
    from handlers.model import Report

log = logging.getLogger("mailcheck.slack")

REPORT_SUFFIXES = (".xml", ".xml.gz", ".gz", ".zip", ".json", ".json.gz", ".eml", ".mbox")
REPORT_MIMETYPES = frozenset({
    "application/gzip", "application/x-gzip", "application/zip", "application/x-zip-compressed",
    "application/xml", "text/xml", "application/json", "application/tlsrpt+json",
    "application/tlsrpt+gzip", "message/rfc822", "application/mbox",
})
REPORT_FILETYPES = frozenset({"xml", "gzip", "zip", "json", "email", "eml", "mbox"})
HISTORY_LIMIT = 20  # messages looked through by `/mailcheck reports`


def is_report_file(f: dict[str, Any]) -> bool:
    """Could this shared file hold a receiver report? (The parser decides.)"""
    name = str(f.get("name") or "").lower()
    return (name.endswith(REPORT_SUFFIXES)
            or str(f.get("mimetype") or "").lower() in REPORT_MIMETYPES
            or str(f.get("filetype") or "").lower() in REPORT_FILETYPES)


def report_files(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in (msg.get("files") or [])[:3] if isinstance(f, dict) and is_report_file(f)]


async def _store_and_previous(rt: Runtime, team_id: str, reports: list[Any]) -> list[Any] | None:
    """Store the reports (source upload); the reports this workspace had for the same
    domains before them (None: no database, so no "new since last time")."""
    from bot.storage.reports import ReportStore, dedupe_key, storable

    store = await rt.store()
    if store is None:
        return None
    try:
        from handlers.reports.api import ParsedReport

        rs = ReportStore.of(store)
        keys = {dedupe_key(storable(r)) for r in reports}
        domains = sorted({str(getattr(r, "domain", "") or "") for r in reports} - {""})
        before: list[Any] = []
        for domain in domains[:20]:
            for row in await rs.find(team_id, domain=domain, limit=500):
                if row.key not in keys:
                    before.append(ParsedReport.from_dict(row.data))
        await rs.add(team_id, reports, source="upload")
        return before or None
    except Exception as exc:  # storage trouble must not cost the user the summary
        log.warning("storing uploaded reports failed: %s", type(exc).__name__)
        return None


async def summarize(rt: Runtime, reports: list[Any], previous: list[Any] | None, origin_kind: str) -> Report:
    from handlers.reports.api import summarize as engine

    return await rt._bounded("reports", origin_kind, lambda: engine(reports, rt.resolver(), previous=previous))


async def answer_file(
    rt: Runtime,
    client: Any,
    f: dict[str, Any],
    data: bytes,
    lang: str,
    origin: Origin,
    source: dict[str, Any],
    *,
    explicit: bool,
    origin_kind: str = "thread",
) -> bool:
    """Summarise the reports in one downloaded file; False when it holds none (and, unless
    `explicit`, nothing was said)."""
    from bot.slack import flows
    from bot.slack.runtime import CheckTimeout
    from handlers.reports.api import parse_blob

    name = str(f.get("name") or "file")
    parsed = await asyncio.to_thread(parse_blob, name, data)
    if not parsed.reports:
        if explicit and not flows.is_text_file(f):
            await flows.notice(rt, client, origin, text(lang, "report_none", name=name))
            return True
        return False
    if await flows.limited(rt, client, origin, lang, quiet=not explicit):
        return True
    previous = await _store_and_previous(rt, origin.team_id, list(parsed.reports))
    try:
        report = await summarize(rt, list(parsed.reports), previous, origin_kind)
    except CheckTimeout:
        rt.metrics.errors.labels("timeout").inc()
        await flows.notice(rt, client, origin, text(lang, "timeout", what=name))
        return True
    except Exception:
        rt.metrics.errors.labels("analysis").inc()
        log.exception("report summary failed")
        await flows.notice(rt, client, origin, text(lang, "failed", what=name))
        return True
    await flows.present(rt, client, report, lang, {**source, "k": "reports"}, origin)
    return True


async def latest_report_message(client: Any, channel: str) -> dict[str, Any] | None:
    """The newest message among the channel's last HISTORY_LIMIT with a report file."""
    try:
        resp = await client.conversations_history(channel=channel, limit=HISTORY_LIMIT)
    except Exception as exc:
        log.info("conversations.history failed: %s", type(exc).__name__)
        return None
    for m in resp.get("messages") or []:
        if isinstance(m, dict) and report_files(m):
            return dict(m)
    return None


async def reports_command(rt: Runtime, client: Any, team: str, channel: str | None, user: str,
                          lang: str) -> str:
    """`/mailcheck reports`: summarise the latest shared report file here, in its thread."""
    from bot.slack import flows

    if not channel:
        return text(lang, "reports_no_file")
    msg = await latest_report_message(client, channel)
    if msg is None:
        return text(lang, "reports_no_file")
    msg.setdefault("channel", channel)
    origin = flows.Origin(team_id=team, channel_id=channel, user_id=user, thread_ts=str(msg.get("ts") or ""))
    name = str(report_files(msg)[0].get("name") or "file")
    rt.spawn(flows.analyse_message_event(rt, client, msg, lang, origin, explicit=True), name="reports:command")
    return text(lang, "reports_summarising", name=name)
