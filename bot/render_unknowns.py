"""What could not be checked, said once and compactly (the terminal's default view).

A domain audit on a resolver that Spamhaus refuses has dozens of `unknown` blocklist rows,
once per list and target, each printed twice (as a finding and as a table row): they
pushed SPF, DKIM and DMARC off the screen. The default view gives one line per kind of
cause ("14 blocklists could not be checked (refused via this resolver: zen.spamhaus.org,
dbl.spamhaus.org; timeout: 3 lists)") and one line per other check that could not be
made; `--verbose` shows every row as before.
"""

from __future__ import annotations

from handlers.model import BlocklistResult, Finding, Report
from knowledge.engine_texts import engine_text

NAMES_SHOWN = 3  # per cause; more become "N lists"


def _kind_label(kind: str, lang: str) -> str:
    try:
        return engine_text(f"unknown_kind_{kind or 'failed'}", lang)
    except KeyError:
        return engine_text("unknown_kind_failed", lang)


def blocklist_line(rows: list[BlocklistResult], lang: str) -> str:
    """One line for every unknown blocklist row of the report: distinct lists per cause."""
    by_kind: dict[str, set[str]] = {}
    for row in rows:
        if row.status == "unknown":
            by_kind.setdefault(row.why_kind or "failed", set()).add(row.name or row.zone)
    if not by_kind:
        return ""
    total = len(set().union(*by_kind.values()))
    sep = "、" if lang == "ja" else "; "
    parts = []
    for kind in sorted(by_kind, key=lambda k: (-len(by_kind[k]), k)):
        names = sorted(by_kind[kind])
        shown = (", ".join(names) if len(names) <= NAMES_SHOWN
                 else engine_text("unknown_lists_more", lang, count=len(names)))
        parts.append(f"{_kind_label(kind, lang)}: {shown}")
    return engine_text("unknown_lists", lang, count=total, why=sep.join(parts))


def compact_lines(report: Report, lang: str) -> list[tuple[str, str]]:
    """(text, code) lines for the report's unknown findings; blocklists collapsed into one."""
    out: list[tuple[str, str]] = []
    lists_done = False
    for f in report.sorted_findings():
        if f.severity != "unknown":
            continue
        if f.code == "blocklist.unknown":
            if not lists_done:
                line = blocklist_line(report.blocklists, lang)
                if line:
                    out.append((line, f.code))
                lists_done = True
            continue
        out.append((f.title, f.code))
    return out


def unknown_findings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "unknown"]
