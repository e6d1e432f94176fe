"""`mailcheck message [FILE|-]`: spam-folder diagnosis of a delivered message.

The lead wires this into bot/cli.py (COMMANDS["message"] = cmd_message and a
subparser with `file` defaulting to "-"). Live checks (DKIM keys, DMARC, PTR,
blocklists of the sending IP and of the URL domains) run by default through
the same resolver settings as every other command.
"""

from __future__ import annotations

import argparse

from handlers.model import Report


async def cmd_message(args: argparse.Namespace) -> Report:
    from bot.cli import UsageError, make_resolver, read_input
    from handlers.charsets import looks_binary
    from handlers.message import diagnose_message

    data = read_input(getattr(args, "file", None) or "-")
    if not data.strip():
        raise UsageError("the input is empty: give a message file (.eml / source) or pipe it on stdin")
    if looks_binary(data):
        raise UsageError("the input is binary data, not a mail message: give the message source (.eml)")
    resolver = make_resolver(args)
    live = not getattr(args, "offline", False)
    return await diagnose_message(data, resolver, live=live, lang=getattr(args, "lang", "en") or "en")
