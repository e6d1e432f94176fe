"""Readable terminal report: worst first, grouped by check, fixes once each.

rich handles colour and degrades to plain text when stdout is not a TTY.
"""

from __future__ import annotations

from typing import Any

from bot.case_values import values_for
from bot.render_unknowns import compact_lines
from handlers.model import SEVERITY_RANK, Finding, Report
from knowledge.engine_texts import engine_text

SYMBOL = {"critical": "✖", "warning": "▲", "unknown": "?", "info": "•", "ok": "✔"}
STYLE = {"critical": "bold red", "warning": "yellow", "unknown": "magenta", "info": "cyan", "ok": "green"}
GROUP_TITLES = {
    "spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC", "mx": "MX", "ptr": "Reverse DNS (PTR / FCrDNS)",
    "mta_sts": "MTA-STS", "tls_rpt": "TLS-RPT", "bimi": "BIMI", "dnssec": "DNSSEC", "blocklists": "Blocklists",
    "blocklist": "Blocklists", "requirements": "Gmail / Yahoo Inc. (yahoo.com, aol.com) / Microsoft sender requirements",
    "bounce": "Bounce", "message": "Message", "input": "Input", "ip": "IP", "domain": "Domain",
    "reports": "Receiver reports",
}
GROUP_TITLES_JA = {
    "ptr": "逆引きDNS（PTR / FCrDNS）", "blocklists": "ブロックリスト", "blocklist": "ブロックリスト",
    "requirements": "Gmail・米Yahoo（yahoo.com・aol.com）・Microsoftの送信者要件", "bounce": "バウンス", "message": "メッセージ",
    "input": "入力", "domain": "ドメイン", "reports": "受信側からのレポート",
}
LABELS = {
    "en": {"fixes": "How to fix", "verify": "Check", "took": "took", "lists": "Blocklist lookups",
           "listed": "LISTED", "unknown": "unknown", "clean": "clean", "no_findings": "Nothing to report.",
           "permanent": "permanent", "temporary": "temporary", "address_dead": "address dead",
           "recipient_masked": "(recipient masked)", "recipient_unknown": "(recipient unknown)",
           "r_source": "source", "r_name": "PTR / provider", "r_messages": "messages", "r_dmarc": "DMARC",
           "r_spf": "SPF aligned", "r_dkim": "DKIM aligned", "r_disposition": "disposition", "yes": "yes", "no": "no",
           "r_totals": "messages {m}, DMARC pass {p}, fail {f}", "r_more": "… {n} more sources (--json lists all)",
           "r_sessions": "sessions: {ok} successful, {failed} failed", "r_failure": "source {ip}, failed: {what}"},
    "ja": {"fixes": "対処方法", "verify": "確認方法", "took": "所要時間", "lists": "ブロックリスト照会結果",
           "listed": "掲載あり", "unknown": "不明", "clean": "掲載なし", "no_findings": "問題は見つかりませんでした。",
           "permanent": "恒久的エラー", "temporary": "一時的エラー", "address_dead": "宛先アドレスは無効",
           "recipient_masked": "（宛先は伏せ字）", "recipient_unknown": "（宛先不明）",
           "r_source": "送信元", "r_name": "PTR・事業者", "r_messages": "通数", "r_dmarc": "DMARC",
           "r_spf": "SPF一致", "r_dkim": "DKIM一致", "r_disposition": "受信側の処置", "yes": "あり", "no": "なし",
           "r_totals": "{m}通（DMARC合格 {p}通、不合格 {f}通）", "r_more": "ほかに送信元が {n}件あります（--json ですべて表示）",
           "r_sessions": "セッション: 成功 {ok}件、失敗 {failed}件", "r_failure": "送信元 {ip}、不合格: {what}"},
}


def render(report: Report, *, lang: str = "en", console: Any = None, verbose: bool = False) -> None:
    """The report for a terminal: what is wrong first, then one compact group of what could
    not be checked (bot/render_unknowns.py), then the rest; `verbose` shows every row."""
    from rich.console import Console
    from rich.markup import escape

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here, which reads as "something critical"; let the CLI decide.
            self.quiet = True
            raise BrokenPipeError

    con = console or _PipeConsole(highlight=False, soft_wrap=False, emoji=False)
    lab = LABELS.get(lang, LABELS["en"])
    con.print(f"[bold]mailcheck {report.kind}: {escape(report.subject)}[/bold]  "
              f"[dim]({report.checked_at:%Y-%m-%d %H:%M:%SZ}, {lab['took']} {report.duration_ms} ms)[/dim]")
    for note in report.notes:
        con.print(f"[dim]note: {escape(note)}[/dim]")
    if report.spf is not None:
        _render_spf(con, report.spf)
    for b in report.bounces:
        _render_bounce(con, b.to_dict(), LABELS["ja" if lang == "ja" else "en"])
    if report.kind == "reports":
        _render_reports(con, report.details.get("reports") or [], LABELS["ja" if lang == "ja" else "en"])
    groups: dict[str, list[Finding]] = {}
    for f in report.sorted_findings():
        if verbose or f.severity != "unknown":
            groups.setdefault(f.group, []).append(f)
    order = sorted(groups, key=lambda g: min(SEVERITY_RANK[f.severity] for f in groups[g]))
    compact = [] if verbose else compact_lines(report, lang)
    # The compact group goes after the groups that hold something wrong, before the rest.
    at = next((i for i, g in enumerate(order) if min(SEVERITY_RANK[f.severity] for f in groups[g])
               > SEVERITY_RANK["warning"]), len(order))
    for i, g in enumerate([*order, None]):
        if i == at and compact:
            con.print(f"\n[bold underline]{escape(engine_text('unknown_heading', lang))}[/bold underline]"
                      f"  [dim]({escape(engine_text('unknown_verbose_hint', lang))})[/dim]")
            for text, code in compact:
                con.print(f"  [{STYLE['unknown']}]{SYMBOL['unknown']} {escape(text)}[/{STYLE['unknown']}]"
                          f"  [dim]{code}[/dim]", soft_wrap=True)
        if g is None:
            break
        title = (GROUP_TITLES_JA.get(g) if lang == "ja" else None) or GROUP_TITLES.get(g, g.upper())
        con.print(f"\n[bold underline]{escape(title)}[/bold underline]")
        for f in groups[g]:
            con.print(f"  [{STYLE[f.severity]}]{SYMBOL[f.severity]} {escape(f.title)}[/{STYLE[f.severity]}]"
                      f"  [dim]{f.code}[/dim]", soft_wrap=True)  # the code stays on its title's line
            if f.detail and f.severity != "ok":
                con.print(f"    {escape(f.detail)}", soft_wrap=True)
        if g == "spf" and "spf" in report.details and isinstance(report.details["spf"], dict):
            _render_tree(con, report.details["spf"])
    if not report.findings and not report.bounces:
        con.print(lab["no_findings"])
    listed = [b for b in report.blocklists if b.status != "clean"]
    if report.blocklists:
        clean = sum(1 for b in report.blocklists if b.status == "clean")
        con.print(f"\n[bold underline]{lab['lists']}[/bold underline]  [dim]{clean} {lab['clean']}, "
                  f"{sum(1 for b in listed if b.status == 'listed')} {lab['listed']}, "
                  f"{sum(1 for b in listed if b.status == 'unknown')} {lab['unknown']}[/dim]")
        shown = listed if verbose else [b for b in listed if b.status == "listed"]
        for row in sorted(shown, key=lambda x: (x.status != "listed", x.zone)):
            style = "bold red" if row.status == "listed" else "magenta"
            extra = f" {row.meaning}" if row.meaning else ""
            extra += f" ({row.why_unknown})" if row.why_unknown else ""
            url = f"  {row.delist_url}" if row.delist_url and row.status == "listed" else ""
            con.print(f"  [{style}]{lab[row.status]:>8}[/{style}] {escape(row.target)} @ {escape(row.zone)}"
                      f"{escape(extra)}{escape(url)}", soft_wrap=True)
    _render_fixes(con, report, lang, lab)


def _render_spf(con: Any, spf: dict[str, Any]) -> None:
    from rich.markup import escape

    result = str(spf.get("result", "?"))
    style = {"pass": "green", "fail": "bold red", "softfail": "yellow", "permerror": "bold red",
             "temperror": "magenta"}.get(result, "cyan")
    con.print(f"\nSPF result: [{style}]{result}[/{style}]" +
              (f"  (matched: {escape(str(spf['mechanism']))})" if spf.get("mechanism") else ""))
    if spf.get("explanation"):
        con.print(f"  explanation: {escape(str(spf['explanation']))}")
    for step in spf.get("trace", []) or []:
        con.print(f"  [dim]{escape(format_trace_step(step))}[/dim]", soft_wrap=True)


def format_trace_step(step: Any) -> str:
    """One line per SPF evaluation step, indented by include depth."""
    if not isinstance(step, dict):
        return str(step)
    pad = "  " * int(step.get("depth", 0) or 0)
    kind = step.get("step")
    dom = step.get("domain", "")
    if kind == "record":
        return f"{pad}{dom}: \"{step.get('record', '')}\""
    if kind == "term":
        extra = f" ({step['detail']})" if step.get("detail") else ""
        return f"{pad}  {step.get('term')}: {step.get('outcome')}{extra}"
    if kind == "result":
        return f"{pad}=> {step.get('result')}" + (f" via {step['term']}" if step.get("term") else "")
    rest = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("depth", "domain", "step"))
    return f"{pad}{kind} {dom}: {rest}"


def _render_tree(con: Any, node: dict[str, Any], depth: int = 0) -> None:
    from rich.markup import escape

    if not node.get("domain"):
        return
    pad = "    " + "  " * depth
    lookups = node.get("total_lookups", node.get("lookups"))
    info = f" [{lookups} lookups]" if lookups is not None else ""
    err = f" [red]{escape(str(node['error']))}[/red]" if node.get("error") else ""
    con.print(f"{pad}{'└ ' if depth else ''}{escape(str(node['domain']))}{info}{err}"
              f"  [dim]{escape(str(node.get('record') or ''))[:160]}[/dim]", soft_wrap=True)
    for child in node.get("children", []) or []:
        if isinstance(child, dict):
            _render_tree(con, child, depth + 1)


MAX_SOURCE_ROWS = 10  # per aggregate report in the terminal; --json has every source


def _render_reports(con: Any, reports: list[dict[str, Any]], lab: dict[str, str]) -> None:
    """One table per report: the aggregate report's sources, the TLS report's policies."""
    from rich.markup import escape
    from rich.table import Table

    for r in reports:
        period = " – ".join(str(x)[:16].replace("T", " ") for x in (r.get("begin"), r.get("end")) if x)
        head = f"\n[bold]{escape(str(r.get('type')))}[/bold] {escape(str(r.get('org_name') or '?'))} → " \
               f"{escape(str(r.get('domain') or '?'))}  [dim]{escape(period)}[/dim]"
        con.print(head, soft_wrap=True)
        if r.get("type") == "dmarc-aggregate":
            con.print("  " + lab["r_totals"].format(m=r.get("messages"), p=r.get("dmarc_pass"), f=r.get("dmarc_fail")))
            table = Table(show_edge=False, pad_edge=False, box=None)
            sources = r.get("sources") or []
            lists = any(s.get("blocklists") for s in sources[:MAX_SOURCE_ROWS])
            for col in ("r_source", "r_name", "r_messages", "r_dmarc", "r_spf", "r_dkim", "r_disposition"):
                table.add_column(lab[col])
            if lists:
                table.add_column(lab["lists"])
            for s in sources[:MAX_SOURCE_ROWS]:
                name = " / ".join(str(x) for x in (s.get("ptr"), s.get("provider")) if x)
                style = "green" if s.get("dmarc") == "pass" else "red" if s.get("dmarc") == "fail" else "yellow"
                cells = [escape(str(s.get("ip"))), escape(name), str(s.get("messages")),
                         f"[{style}]{s.get('dmarc')}[/{style}]", lab["yes" if s.get("spf_aligned") else "no"],
                         lab["yes" if s.get("dkim_aligned") else "no"], escape(str(s.get("disposition")))]
                if lists:
                    cells.append(f"[bold red]{escape(', '.join(s.get('blocklists') or []))}[/bold red]")
                table.add_row(*cells)
            con.print(table)
            if len(sources) > MAX_SOURCE_ROWS:
                con.print(f"  [dim]{escape(lab['r_more'].format(n=len(sources) - MAX_SOURCE_ROWS))}[/dim]")
        elif r.get("type") == "tls-rpt":
            con.print("  " + lab["r_sessions"].format(ok=r.get("successful_sessions"), failed=r.get("failed_sessions")))
            for f in r.get("failures") or []:
                con.print(f"    [red]{escape(str(f.get('result_type')))}[/red]: {f.get('sessions')}")
        else:
            con.print("  " + escape(lab["r_failure"].format(ip=r.get("source_ip") or "?",
                                                           what=r.get("auth_failure") or "?")))


def _render_bounce(con: Any, b: dict[str, Any], lab: dict[str, str]) -> None:
    from rich.markup import escape

    # SPEC: people read "soft" as "temporary", so the terminal says permanent/temporary;
    # `hard` (the address is dead) is said in words of its own.
    permanent = b.get("permanent")
    perm = "" if permanent is None else lab["permanent" if permanent else "temporary"]
    marks = ", ".join(x for x in (perm, lab["address_dead"] if b.get("hard") else "") if x)
    who = b.get("recipient") or lab["recipient_masked" if b.get("recipient_masked") else "recipient_unknown"]
    head = (f"\n[bold]{escape(str(who))}[/bold]  "
            f"reason=[bold]{b.get('reason')}[/bold]{f' ({marks})' if marks else ''}"
            f"  status={b.get('status')}  reply={b.get('reply_code')}"
            f"  provider={b.get('provider') or '-'}")
    con.print(head, soft_wrap=True)
    for key in ("remote_host", "remote_ip", "sender_ip", "sender_ip_masked"):
        if b.get(key):
            con.print(f"  {key}: {escape(str(b[key]))}")
    if b.get("diagnostic"):
        con.print(f"  [dim]{escape(str(b['diagnostic']))[:600]}[/dim]", soft_wrap=True)
    if b.get("explanation"):
        con.print(f"  {escape(str(b['explanation']))}", soft_wrap=True)


def _render_fixes(con: Any, report: Report, lang: str, lab: dict[str, str]) -> None:
    from rich.markup import escape

    import knowledge

    ids: list[str] = []
    for f in report.sorted_findings():
        if f.severity in ("critical", "warning"):
            ids.extend(f.remediation)
    for b in report.bounces:
        ids.extend(b.remediation)
    ids = list(dict.fromkeys(ids))
    entries = [e for e in (knowledge.find_remediation(i) for i in ids) if e is not None]
    if not entries:
        return
    case = values_for(report)  # the fix texts name this case's domain, IP and selector
    con.print(f"\n[bold underline]{lab['fixes']}[/bold underline]")
    for e in entries:
        title = case.fill(e.title.ja if lang == "ja" else e.title.en)
        verify = case.fill(e.verify.ja if lang == "ja" else e.verify.en)
        con.print(f"\n  [bold]{escape(title)}[/bold]  [dim]{e.id}[/dim]")
        for i, (step, blocks) in enumerate(e.steps_with_code(lang), 1):
            con.print(f"    {i}. {escape(case.fill(step))}", soft_wrap=True)
            for blk in blocks:
                # Copyable as printed: never wrapped, never highlighted, label on its own line.
                if blk.label:
                    con.print(f"       [dim]# {escape(blk.label)}[/dim]", soft_wrap=False)
                for line in blk.lines:
                    con.print(f"       {escape(case.fill(line))}", soft_wrap=False, highlight=False,
                              overflow="ignore", crop=False)
        con.print(f"    [dim]{lab['verify']}: {escape(verify)}[/dim]", soft_wrap=True)
