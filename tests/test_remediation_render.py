"""Commands and configuration lines in the fixes are shown as copyable blocks of their own."""

from __future__ import annotations

import io
import json

from rich.console import Console

from bot.render_blocks import render_report
from bot.render_terminal import render
from handlers.bounce import analyse_bounce

GMAIL_IPV6 = (
    "<***@gmail.com>: host gmail-smtp-in.l.google.com[2404:6800:4008:c19::1b] said: 550-5.7.1\n"
    "    [2001:db8:1302:3134::25] The IP you're using to send mail 550-5.7.1 is not\n"
    "    authorized to send email directly to our servers. 550 5.7.1\n"
    "    https://support.google.com/mail/?p=NotAuthorizedError a1si1 - gsmtp (in reply to end of DATA command)\n"
)


def _terminal(lang: str) -> str:
    out = io.StringIO()
    render(analyse_bounce(GMAIL_IPV6, lang=lang), lang=lang, console=Console(file=out, width=60))
    return out.getvalue()


def test_the_ipv4_only_setting_is_printed_on_a_line_of_its_own_however_narrow_the_terminal() -> None:
    for lang in ("en", "ja"):
        lines = [ln.strip() for ln in _terminal(lang).splitlines()]
        assert "postconf -P 'smtp/unix/inet_protocols=ipv4' && postfix reload" in lines
        assert "-o inet_protocols=ipv4" in lines


def test_slack_shows_the_ipv4_only_setting_in_a_code_block() -> None:
    for lang in ("en", "ja"):
        messages = render_report(analyse_bounce(GMAIL_IPV6, lang=lang), lang)
        text = json.dumps([m.block_dicts() for m in messages], ensure_ascii=False)
        assert "```# shell\\npostconf -P 'smtp/unix/inet_protocols=ipv4' &amp;&amp; postfix reload```" in text
