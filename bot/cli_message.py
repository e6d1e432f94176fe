"""`mailcheck message [FILE|-]`: spam-folder diagnosis of a delivered message.

Registered in bot/cli.py (COMMANDS["message"]); the check itself runs through
handlers/api.py like every other. Live checks (DKIM keys, DMARC, PTR,
blocklists of the sending IP and of the URL domains) run by default through
the same resolver settings as every other command.
"""

from __future__ import annotations

import argparse

from handlers.model import Report


async def cmd_message(args: argparse.Namespace) -> Report:
    from bot.cli import UsageError, make_resolver, read_input
    from handlers import api
    from handlers.charsets import looks_binary

    data = read_input(getattr(args, "file", None) or "-")
    if not data.strip():
        raise UsageError("the input is empty: give a message file (.eml / source) or pipe it on stdin")
    if looks_binary(data):
        raise UsageError("the input is binary data, not a mail message: give the message source (.eml)")
    live = not getattr(args, "offline", False)
    request = api.CheckRequest(data=data, live=live, lang=getattr(args, "lang", "en") or "en")
    return await api.run("message", request, make_resolver(args))
