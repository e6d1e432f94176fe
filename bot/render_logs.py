"""A whole-log summary as Slack mrkdwn, and its chart (PNG): outcomes per hour for the
busiest providers. Used by the Slack app (a shared log file) and `mailcheck logs
--follow --post`. Both are fed the report's SPEC dict (``LogsReport.to_dict()``), already
masked unless addresses were asked for.

matplotlib is imported only when a chart is drawn (Agg backend, no display), so the
CLI's start-up does not pay for it.
"""

from __future__ import annotations

import calendar
import io
import time
from collections.abc import Callable
from typing import Any

from knowledge.engine_texts import engine_text

OUTCOMES = ("delivered", "deferred", "bounced", "expired")
COLOURS = {"delivered": "#2e7d32", "deferred": "#f9a825", "bounced": "#c62828", "expired": "#6a1b9a"}
CHART_PROVIDERS = 4  # panels in the chart
_NOT_DESTINATIONS = frozenset({"other", "local", "content-filter"})
TEXT_PROVIDERS = 8
MAX_HOURS = 24 * 14  # bars drawn hour by hour; a longer log shows only the hours it has
EXAMPLE_CHARS = 160
# Fonts that carry Japanese glyphs; without one the chart's labels are drawn in English.
_CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "VL Gothic")


def _identity(s: str) -> str:
    return s


def summary_text(data: dict[str, Any], lang: str, *, escape: Callable[[str], str] = _identity,
                 masked: bool = True, providers: int = TEXT_PROVIDERS) -> str:
    """The summary in mrkdwn: period and totals, the top providers with their top reasons
    (one example each), the findings."""
    t = data["totals"]
    if not data["lines"] or data["period"]["start"] is None:
        return engine_text("logs_no_lines", lang)
    out = ["*" + escape(engine_text("logs_heading", lang, start=data["period"]["start"],
                                    end=data["period"]["end"], lines=data["lines"],
                                    messages=data["messages"])) + "*",
           escape(engine_text("logs_totals", lang, **{k: t[k] for k in
                  ("delivered", "deferred", "deferrals", "bounced", "expired", "rejected")}))]
    shown = data["providers"][:providers]
    for p in shown:
        out.append("• " + escape(engine_text("logs_provider", lang, **{k: p[k] for k in
                   ("provider", "delivered", "deferred", "bounced", "expired")})))
        for r in p["reasons"][:2]:
            example = r["example"][:EXAMPLE_CHARS].replace("`", "'")  # a backtick would end the code span
            out.append("    ◦ " + escape(engine_text("logs_reason_count", lang, reason=r["reason"], count=r["count"]))
                       + (f" `{escape(example)}`" if example else ""))
    if len(data["providers"]) > len(shown):
        out.append(escape(engine_text("logs_more_providers", lang, count=len(data["providers"]) - len(shown))))
    if data["findings"]:
        out.append("")
        out.append("*" + escape(engine_text("logs_findings", lang)) + "*")
        for f in data["findings"][:8]:
            out.append(f"• [{f['severity']}] " + escape(f["title"]))
            if f.get("detail"):
                out.append("    " + escape(f["detail"]))
    if masked:
        out.append("")
        out.append("_" + escape(engine_text("logs_masked", lang)) + "_")
    return "\n".join(out)


def chart_series(data: dict[str, Any], top: int = CHART_PROVIDERS) -> tuple[list[str], list[str],
                                                                              dict[str, dict[str, list[int]]]]:
    """(hours, providers, {provider: {outcome: counts per hour}}) of the busiest providers."""
    rows = {h["hour"]: h["providers"] for h in data.get("hours") or []}
    hours = sorted(rows)
    if hours:  # every hour from the first to the last, so a quiet hour shows as a gap
        first, last = (calendar.timegm(time.strptime(h, "%Y-%m-%dT%H:%M:%S")) for h in (hours[0], hours[-1]))
        span = int((last - first) // 3600) + 1
        if span <= MAX_HOURS:
            hours = [time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first + 3600 * i)) for i in range(span)]
    names = [p["provider"] for p in data["providers"] if p["provider"] not in _NOT_DESTINATIONS
             and any(r.get(p["provider"]) for r in rows.values())][:top]
    series = {name: {o: [int(((rows.get(h) or {}).get(name) or {}).get(o, 0)) for h in hours]
                     for o in OUTCOMES} for name in names}
    return hours, names, series


def has_chart(data: dict[str, Any]) -> bool:
    return bool(chart_series(data)[1])


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in have), None)


def render_chart(data: dict[str, Any], lang: str) -> bytes:
    """A PNG: one panel per busy provider, stacked bars of outcomes per hour."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hours, names, series = chart_series(data)
    font = _cjk_font() if lang == "ja" else None
    label_lang = "ja" if font else "en"
    rc: Any = {"font.family": [font, "DejaVu Sans"]} if font else {}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(10, 1.2 + 2.0 * max(1, len(names))), dpi=100)
        FigureCanvasAgg(fig)
        axes = fig.subplots(max(1, len(names)), 1, sharex=True, squeeze=False)[:, 0]
        xs = list(range(len(hours)))
        ticks = [h[5:13].replace("T", " ") + "h" for h in hours]  # "12-04 09h"
        from matplotlib.ticker import MaxNLocator

        for ax, name in zip(axes, names, strict=False):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            bottom = [0] * len(hours)
            for outcome in OUTCOMES:
                values = series[name][outcome]
                ax.bar(xs, values, bottom=bottom, color=COLOURS[outcome], width=0.8,
                       label=engine_text(f"logs_outcome_{outcome}", label_lang))
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            ax.set_title(name, loc="left", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=4, frameon=False)
        step = max(1, len(hours) // 12)
        axes[-1].set_xticks(xs[::step], ticks[::step], rotation=30, ha="right", fontsize=8)
        axes[-1].set_xlabel(engine_text("logs_chart_hour", label_lang))
        fig.suptitle(engine_text("logs_chart_title", label_lang), x=0.01, ha="left")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()
