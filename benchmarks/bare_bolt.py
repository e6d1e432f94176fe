"""The reference for benchmarks/load.py: a bare slack-bolt AsyncApp whose `/mailcheck`
listener only acks, served over HTTP like `mailcheck serve --mode http` (its own
process, same signing secret). Its ack latency is the floor for Bolt's request
parsing, signature check and dispatch on this machine.

    PORT=3001 SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=... SLACK_API_URL=... python benchmarks/bare_bolt.py
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"],
                            base_url=os.environ.get("SLACK_API_URL") or "https://slack.com/api/")
    app = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client)

    @app.command("/mailcheck")
    async def only_ack(ack: Any) -> None:
        await ack("ok")

    web_app = app.web_app(path="/slack/events")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "tasks": 0})

    web_app.router.add_get("/healthz", healthz)
    web.run_app(web_app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None)


if __name__ == "__main__":
    main()
