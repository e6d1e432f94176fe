"""The chart of a log summary: outcomes per hour for the busiest providers, as a PNG."""

from __future__ import annotations

import struct
from pathlib import Path

from bot.render_logs import chart_series, render_chart
from handlers.logs import analyse_logs
from tests.support.maillogs import gmail_day, yahoo_bounces


def summary(tmp_path: Path, text: str) -> dict[str, object]:
    log = tmp_path / "mail.log"
    log.write_text(text)
    return analyse_logs([str(log)]).to_dict()


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_every_hour_from_first_to_last_is_a_bar_so_a_quiet_hour_shows_as_a_gap(tmp_path: Path) -> None:
    data = summary(tmp_path, gmail_day(hours=range(8, 10)) + yahoo_bounces(hour=12))
    hours, providers, series = chart_series(data)
    assert [h[11:13] for h in hours] == ["08", "09", "10", "11", "12"]
    assert providers == ["google", "yahoo"]
    assert series["yahoo"]["bounced"] == [0, 0, 0, 0, 3]
    assert series["google"]["delivered"] == [20, 20, 0, 0, 0]


def test_the_chart_is_a_png_with_one_panel_per_busy_provider_in_both_languages(tmp_path: Path) -> None:
    one = summary(tmp_path, gmail_day())
    two = summary(tmp_path, gmail_day() + yahoo_bounces())
    for lang in ("en", "ja"):
        w1, h1 = png_size(render_chart(one, lang))
        w2, h2 = png_size(render_chart(two, lang))
        assert w1 == w2 and h2 > h1  # a second provider is a second panel


def test_local_deliveries_and_the_content_filter_are_not_drawn_as_providers(tmp_path: Path) -> None:
    data = analyse_logs([str(Path(__file__).parent / "fixtures" / "logs" / "postfix_cases.log")]).to_dict()
    _, providers, _ = chart_series(data)
    assert "local" not in providers and "content-filter" not in providers and providers
