"""Block Kit rendering of a Report: a pure function of (Report, lang).

Built with `slack_sdk.models.blocks`, so Slack's per-block limits are checked
by the models themselves; this module adds the per-message ones:
- at most 50 blocks per message, section text <= 3000, header <= 150;
- about 12k characters of block text per message (`msg_blocks_too_long`
  appears near 13k even below the per-block limits: bolt-js #2509);
- a long report becomes several messages (up to `max_messages`), and what
  still does not fit is cut with a pointer to the Details button / the CLI.

Layout: header, one-line summary, findings worst first (remediation inline:
title + steps of each knowledge entry, once per report), blocklist rows,
bounce rows, then the buttons Re-check / Details / language switch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.slack.text import escape_slack, truncate
from handlers.model import BlocklistResult, BounceRecord, Finding, Report

MAX_BLOCKS = 50
SECTION_MAX = 3000
HEADER_MAX = 150
CONTEXT_MAX = 2000
MESSAGE_CHARS = 11_000
FALLBACK_MAX = 3000
BUTTON_VALUE_MAX = 2000

ACTION_RECHECK = "mailcheck_recheck"
ACTION_DETAILS = "mailcheck_details"
ACTION_LANG = "mailcheck_lang"

ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "unknown": ":grey_question:",
    "info": ":information_source:",
    "ok": ":white_check_mark:",
}

L10N: dict[str, dict[str, str]] = {
    "en": {
        "domain": "Domain audit", "ip": "IP reputation", "spf": "SPF check",
        "bounce": "Bounce analysis", "message": "Message diagnosis", "reports": "Receiver reports",
        "critical": "critical", "warning": "warnings", "unknown": "unknown", "info": "info", "ok": "passed",
        "nothing": "No problems found.",
        "checked": "checked {at} in {ms} ms",
        "fix": "How to fix", "see_above": "see above", "verify": "Check",
        "passed": "Passed",
        "blocklists": "Blocklists",
        "listed_on": "listed on",
        "clean_on": "{target}: not listed on {n} lists",
        "unknown_on": "{target}: no answer from {zones}",
        "delist": "delisting",
        "bounces": "Bounces",
        "recipient": "Recipient", "status": "Status", "reason": "Reason", "provider": "Provider",
        "permanent": "permanent failure", "temporary": "temporary failure", "address_dead": "address dead",
        "recipient_masked": "(recipient masked)",
        "remote": "Rejected by", "sender_ip": "Sending IP",
        "spf_result": "SPF result",
        "recheck": "Re-check", "details": "Details", "switch": "日本語",
        "more": "…{n} more item(s) not shown. Press *Details* or run `{cli}` for everything.",
        "continued": "({i}/{n}) {title} — continued",
        "evidence": "Evidence", "json": "Full report (JSON)",
        "notes": "Notes",
        "trace": "Evaluation trace",
    },
    "ja": {
        "domain": "ドメイン監査", "ip": "IP レピュテーション", "spf": "SPF 評価",
        "bounce": "バウンス解析", "message": "メッセージ診断", "reports": "受信側からのレポート",
        "critical": "重大", "warning": "警告", "unknown": "不明", "info": "情報", "ok": "合格",
        "nothing": "問題は見つかりませんでした。",
        "checked": "{at} に確認（{ms} ms）",
        "fix": "対処方法", "see_above": "上記参照", "verify": "確認",
        "passed": "合格",
        "blocklists": "ブロックリスト",
        "listed_on": "掲載:",
        "clean_on": "{target}: {n} 件のリストに掲載なし",
        "unknown_on": "{target}: 応答なし {zones}",
        "delist": "掲載解除",
        "bounces": "バウンス",
        "recipient": "宛先", "status": "ステータス", "reason": "理由", "provider": "受信側",
        "permanent": "恒久的エラー", "temporary": "一時的エラー", "address_dead": "宛先アドレスは無効",
        "recipient_masked": "（宛先は伏せ字）",
        "remote": "拒否したホスト", "sender_ip": "送信 IP",
        "spf_result": "SPF 結果",
        "recheck": "再チェック", "details": "詳細", "switch": "English",
        "more": "…ほか {n} 件は省略しました。*詳細* を押すか `{cli}` を実行してください。",
        "continued": "({i}/{n}) {title} — 続き",
        "evidence": "根拠", "json": "レポート全体（JSON）",
        "notes": "注記",
        "trace": "評価の経過",
    },
}


def t(lang: str, key: str, **kw: Any) -> str:
    table = L10N.get(lang, L10N["en"])
    text = table.get(key) or L10N["en"].get(key, key)
    return text.format(**kw) if kw else text


@dataclass
class RenderedMessage:
    """One Slack message: blocks plus the notification/fallback text."""

    blocks: list[Block]
    text: str

    def block_dicts(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]  # validates every block against Slack's limits


@dataclass
class ActionValues:
    """Opaque button values (<= 2000 chars) the Slack layer decodes again."""

    recheck: str | None = None
    details: str | None = None
    lang: str | None = None


@dataclass
class _Item:
    """A renderable unit with a priority: lower priorities are dropped first when cutting."""

    blocks: list[Block]
    chars: int
    keep: bool = False  # never dropped (header, summary)
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Small builders


def _chunks(text: str, limit: int = SECTION_MAX) -> list[str]:
    """Split mrkdwn text at line breaks into pieces <= limit (hard-split long lines)."""
    out: list[str] = []
    cur = ""
    for line in text.split("\n"):
        while len(line) > limit:
            piece = truncate(line, limit, marker="")
            if not piece:  # pathological: an entity at the very start
                piece = line[:limit]
            if cur:
                out.append(cur)
                cur = ""
            out.append(piece)
            line = line[len(piece):]
        candidate = f"{cur}\n{line}" if cur else line
        if len(candidate) > limit:
            out.append(cur)
            cur = line
        else:
            cur = candidate
    if cur.strip():
        out.append(cur)
    return [c for c in out if c.strip()] or [" "]


def _section(text: str) -> list[Block]:
    return [SectionBlock(text=MarkdownTextObject(text=c)) for c in _chunks(text)]


def _context(text: str) -> Block:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, CONTEXT_MAX))])


def _header(text: str) -> Block:
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_MAX), emoji=True))


def _item(blocks: list[Block], *, keep: bool = False) -> _Item:
    chars = 0
    for b in blocks:
        d = b.to_dict()
        chars += len(json.dumps(d, ensure_ascii=False))  # a safe over-estimate of the text size
    return _Item(blocks, chars, keep)


def _remediation_text(ids: Iterable[str], lang: str, seen: set[str], *, verify: bool = False) -> str:
    import knowledge

    lines: list[str] = []
    for rid in ids:
        entry = knowledge.find_remediation(rid)
        if entry is None:
            continue
        title = escape_slack(entry.title.get(lang))
        if rid in seen:
            lines.append(f"  :wrench: {title} ({t(lang, 'see_above')})")
            continue
        seen.add(rid)
        lines.append(f":wrench: *{t(lang, 'fix')}: {title}*")
        for i, (step, blocks) in enumerate(entry.steps_with_code(lang), 1):
            lines.append(f"    {i}. {escape_slack(step)}")
            for blk in blocks:
                # A code block of its own, so Slack neither reflows it nor turns quotes into smart quotes.
                label = f"# {blk.label}\n" if blk.label else ""
                lines.append("```" + escape_slack(label + "\n".join(blk.lines)) + "```")
        if verify:
            lines.append(f"    _{t(lang, 'verify')}:_ {escape_slack(entry.verify.get(lang))}")
    return "\n".join(lines)


def _finding_item(f: Finding, lang: str, seen: set[str], *, detailed: bool) -> _Item:
    icon = ICONS.get(f.severity, "")
    text = f"{icon} *{escape_slack(f.title)}*"
    if f.detail and (detailed or f.severity != "info"):
        text += f"\n{escape_slack(truncate(f.detail, 6000 if detailed else 1500))}"
    if detailed:
        text += f"\n`{escape_slack(f.code)}`"
        if f.evidence:
            ev = json.dumps(f.evidence, ensure_ascii=False, default=str)
            text += f"\n_{t(lang, 'evidence')}:_ `{escape_slack(truncate(ev, 900))}`"
    fix = _remediation_text(f.remediation, lang, seen, verify=detailed) if f.severity != "ok" else ""
    if fix:
        text += "\n" + fix
    return _item(_section(text))


def _summary(report: Report, lang: str) -> str:
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    parts = [f"{ICONS[s]} {counts[s]} {t(lang, s)}" for s in ("critical", "warning", "unknown", "info", "ok")
             if counts.get(s)]
    when = report.checked_at.strftime("%Y-%m-%d %H:%M UTC")
    tail = t(lang, "checked", at=when, ms=report.duration_ms)
    if not any(counts.get(s) for s in ("critical", "warning", "unknown")):
        parts.insert(0, t(lang, "nothing"))
    return " · ".join([*parts, tail])


def _bl_line(b: BlocklistResult, lang: str) -> str:
    name = escape_slack(b.name or b.zone)
    codes = f" ({', '.join(escape_slack(c) for c in b.codes)})" if b.codes else ""
    line = f"{ICONS['critical'] if not b.informational else ICONS['info']} `{escape_slack(b.target)}` " \
           f"{t(lang, 'listed_on')} *{name}*{codes}"
    if b.meaning:
        line += f" — {escape_slack(b.meaning)}"
    if b.reason_text:
        line += f"\n    > {escape_slack(truncate(b.reason_text, 300))}"
    if b.delist_url.startswith(("https://", "http://")) and "|" not in b.delist_url and ">" not in b.delist_url:
        line += f" <{b.delist_url}|{t(lang, 'delist')}>"
    return line


def _blocklist_items(report: Report, lang: str, *, detailed: bool) -> list[_Item]:
    if not report.blocklists:
        return []
    listed = [b for b in report.blocklists if b.status == "listed"]
    unknown = [b for b in report.blocklists if b.status == "unknown"]
    clean = [b for b in report.blocklists if b.status == "clean"]
    lines = [f"*{t(lang, 'blocklists')}*"]
    lines += [_bl_line(b, lang) for b in listed]
    by_target: dict[str, list[BlocklistResult]] = {}
    for b in unknown:
        by_target.setdefault(b.target, []).append(b)
    for target, rows in by_target.items():
        zones = ", ".join(escape_slack(r.name or r.zone) for r in rows)
        lines.append(f"{ICONS['unknown']} " + t(lang, "unknown_on", target=f"`{escape_slack(target)}`", zones=zones))
        if detailed:
            lines += [f"    {escape_slack(r.zone)}: {escape_slack(r.why_unknown)}" for r in rows if r.why_unknown]
    clean_by: dict[str, int] = {}
    for b in clean:
        clean_by[b.target] = clean_by.get(b.target, 0) + 1
    for target, n in clean_by.items():
        lines.append(f"{ICONS['ok']} " + t(lang, "clean_on", target=f"`{escape_slack(target)}`", n=n))
    if detailed and clean:
        lines.append("    " + ", ".join(escape_slack(b.zone) for b in clean))
    return [_item([blk]) for blk in _section("\n".join(lines))]


def _bounce_item(b: BounceRecord, lang: str, seen: set[str], *, detailed: bool) -> _Item:
    # 'hard' = the address is dead; a permanent (5xx) refusal is just as red for the sender.
    icon = ICONS["critical"] if (b.hard or b.permanent) else ICONS["warning"]
    if b.reason == "delivered":
        icon = ICONS["ok"]
    who = b.recipient or (t(lang, "recipient_masked") if b.extra.get("recipient_masked") else "?")
    head = f"{icon} *{escape_slack(who)}* — {t(lang, 'reason')}: *{escape_slack(b.reason)}*"
    bits = []
    if b.status or b.reply_code:
        bits.append(f"{t(lang, 'status')}: `{escape_slack(' '.join(str(x) for x in (b.reply_code, b.status) if x))}`")
    if b.provider:
        bits.append(f"{t(lang, 'provider')}: {escape_slack(b.provider)}")
    if b.permanent is not None:  # SPEC: permanent/temporary, not hard/soft
        bits.append(t(lang, "permanent" if b.permanent else "temporary"))
    if b.hard:
        bits.append(t(lang, "address_dead"))
    if b.remote_host or b.remote_ip:
        bits.append(f"{t(lang, 'remote')}: {escape_slack(' '.join(x for x in (b.remote_host, b.remote_ip) if x))}")
    if b.sender_ip:
        bits.append(f"{t(lang, 'sender_ip')}: `{escape_slack(b.sender_ip)}`")
    text = head + ("\n" + " · ".join(bits) if bits else "")
    if b.explanation:
        text += f"\n{escape_slack(b.explanation)}"
    if b.diagnostic:
        diag = b.diagnostic if detailed else truncate(b.diagnostic, 500)
        text += "\n" + "\n".join(f"> {escape_slack(ln)}" for ln in diag.splitlines()[:40] if ln.strip())
    fix = _remediation_text(b.remediation, lang, seen, verify=detailed)
    if fix:
        text += "\n" + fix
    return _item(_section(text))


def _spf_item(report: Report, lang: str, *, detailed: bool) -> list[_Item]:
    spf = report.spf
    if not spf:
        return []
    res = str(spf.get("result", "?"))
    lines = [f"*{t(lang, 'spf_result')}: `{escape_slack(res)}`*"]
    if spf.get("record"):
        lines.append(f"`{escape_slack(str(spf['record']))}`")
    path = spf.get("path") or []
    if path:
        lines.append(" → ".join(escape_slack(str(p)) for p in path))
    for key in ("problem", "explanation"):
        if spf.get(key):
            lines.append(escape_slack(str(spf[key])))
    items = [_item(_section("\n".join(lines)))]
    trace = spf.get("trace") or []
    if detailed and trace:
        tl = [f"*{t(lang, 'trace')}*"]
        for step in trace[:200]:
            tl.append("`" + escape_slack(truncate(json.dumps(step, ensure_ascii=False, default=str), 400)) + "`")
        items.append(_item(_section("\n".join(tl))))
    return items


def _json_items(report: Report, lang: str) -> list[_Item]:
    raw = json.dumps(report.to_dict(), ensure_ascii=False, indent=1, default=str)
    body = escape_slack(raw)
    items = []
    pieces = _chunks(body, SECTION_MAX - 10)
    for i, piece in enumerate(pieces):
        label = f"*{t(lang, 'json')}*\n" if i == 0 else ""
        text = label + "```" + piece + "```"
        if len(text) > SECTION_MAX:
            text = "```" + piece + "```"
        items.append(_item([SectionBlock(text=MarkdownTextObject(text=text[:SECTION_MAX]))]))
    return items


def _buttons(lang: str, values: ActionValues) -> Block | None:
    elements: list[ButtonElement] = []
    if values.recheck:
        elements.append(ButtonElement(text=PlainTextObject(text=t(lang, "recheck")), action_id=ACTION_RECHECK,
                                      value=values.recheck[:BUTTON_VALUE_MAX], style="primary"))
    if values.details:
        elements.append(ButtonElement(text=PlainTextObject(text=t(lang, "details")), action_id=ACTION_DETAILS,
                                      value=values.details[:BUTTON_VALUE_MAX]))
    if values.lang:
        elements.append(ButtonElement(text=PlainTextObject(text=t(lang, "switch")), action_id=ACTION_LANG,
                                      value=values.lang[:BUTTON_VALUE_MAX]))
    return ActionsBlock(elements=elements) if elements else None


def cli_hint(report: Report) -> str:
    if report.kind == "domain":
        return f"mailcheck domain {report.subject} --json"
    if report.kind == "ip":
        return f"mailcheck ip {report.subject.replace(',', '')} --json"
    if report.kind == "spf":
        return f"mailcheck spf {report.subject} --json"
    return f"mailcheck {report.kind} FILE --json"


def fallback_text(report: Report, lang: str) -> str:
    """Notification text sent along the blocks (also what screen readers read)."""
    title = f"{t(lang, report.kind)}: {report.subject}"
    lines = [title, _summary(report, lang)]
    for f in report.sorted_findings():
        if f.severity in ("critical", "warning"):
            lines.append(f"- {f.title}")
    return truncate(escape_slack("\n".join(lines)), FALLBACK_MAX)


# ---------------------------------------------------------------------------
# Entry point


def render_report(
    report: Report,
    lang: str = "en",
    *,
    actions: ActionValues | None = None,
    detailed: bool = False,
    max_messages: int = 4,
) -> list[RenderedMessage]:
    """Report -> one or more Slack messages, each within Slack's limits."""
    lang = "ja" if lang == "ja" else "en"
    title = f"{t(lang, report.kind)}: {report.subject}"
    head = [
        _item([_header(title), _context(_summary(report, lang))], keep=True),
    ]
    if report.notes:
        head.append(_item([_context("\n".join(escape_slack(n) for n in report.notes))], keep=True))

    seen: set[str] = set()
    body: list[_Item] = []
    findings = report.sorted_findings()
    shown = [f for f in findings if detailed or f.severity != "ok"]
    passed = [f for f in findings if f.severity == "ok"] if not detailed else []

    bounce_items = [_bounce_item(b, lang, seen, detailed=detailed) for b in report.bounces]
    if report.kind in ("bounce", "message") and bounce_items:
        # A bounce report leads with what happened; the live follow-ups come after.
        body += [_item([_section(f"*{t(lang, 'bounces')}*")[0]]), *bounce_items]
        body += [_finding_item(f, lang, seen, detailed=detailed) for f in shown]
    else:
        body += _spf_item(report, lang, detailed=detailed)
        body += [_finding_item(f, lang, seen, detailed=detailed) for f in shown]
        if bounce_items:
            body += bounce_items
    if passed:
        text = f"{ICONS['ok']} *{t(lang, 'passed')}:* " + " · ".join(escape_slack(f.title) for f in passed)
        body.append(_item([_context(text)]))
    body += _blocklist_items(report, lang, detailed=detailed)
    if detailed:
        body += _json_items(report, lang)

    # One block per unit from here on: every unit then fits any message on its own.
    flat: list[_Item] = []
    for group, it in enumerate(body):
        for blk in it.blocks:
            unit = _item([blk])
            unit.extra["group"] = group
            flat.append(unit)
    buttons = _buttons(lang, actions) if actions else None
    return _pack(head, flat, buttons, report, lang, max_messages=max_messages)


def _pack(
    head: list[_Item],
    body: list[_Item],
    buttons: Block | None,
    report: Report,
    lang: str,
    *,
    max_messages: int,
) -> list[RenderedMessage]:
    title = f"{t(lang, report.kind)}: {report.subject}"
    reserve_blocks = 2  # buttons + "more" pointer / continuation context
    reserve_chars = 2500
    messages: list[list[Block]] = []
    cur: list[Block] = []
    cur_chars = 0
    for it in head:
        cur += it.blocks
        cur_chars += it.chars
    dropped = 0
    for idx, it in enumerate(body):
        fits = (len(cur) + len(it.blocks) <= MAX_BLOCKS - reserve_blocks
                and cur_chars + it.chars <= MESSAGE_CHARS - reserve_chars)
        if not fits and cur:
            if len(messages) + 1 >= max_messages:
                dropped = len({it2.extra.get("group", i2) for i2, it2 in enumerate(body[idx:], idx)})
                break
            messages.append(cur)
            cont = t(lang, "continued", i=len(messages) + 1, n="…", title=title)
            cur = [_context(escape_slack(cont))]
            cur_chars = len(cont)
        cur += it.blocks
        cur_chars += it.chars
    if dropped:
        cur.append(_context(t(lang, "more", n=dropped, cli=escape_slack(cli_hint(report)))))
    if buttons is not None:
        cur.append(buttons)
    messages.append(cur)
    total = len(messages)
    fallback = fallback_text(report, lang)
    out: list[RenderedMessage] = []
    for i, blocks in enumerate(messages, 1):
        if i > 1 and blocks and isinstance(blocks[0], ContextBlock):
            cont = t(lang, "continued", i=i, n=total, title=title)
            blocks[0] = _context(escape_slack(cont))
        text = fallback if i == 1 else truncate(escape_slack(t(lang, "continued", i=i, n=total, title=title)), 300)
        out.append(RenderedMessage(blocks=blocks, text=text))
    return out


def render_text(text: str, *, header: str | None = None) -> list[RenderedMessage]:
    """A plain mrkdwn notice (help, errors, confirmations) as one message within the limits."""
    blocks: list[Block] = []
    if header:
        blocks.append(_header(header))
    used = 0
    for chunk in _chunks(text):
        if len(blocks) >= MAX_BLOCKS or used + len(chunk) > MESSAGE_CHARS - 500:
            break
        blocks.append(SectionBlock(text=MarkdownTextObject(text=chunk)))
        used += len(chunk)
    return [RenderedMessage(blocks=blocks, text=truncate(text, FALLBACK_MAX))]


def divider() -> Block:
    return DividerBlock()
