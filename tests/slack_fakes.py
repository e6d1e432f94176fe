"""A small local Slack: Web API + response_url + file downloads, recording every call.

Not a mock of our code: the real app talks HTTP to it exactly as to slack.com
(`SLACK_API_URL` / `AsyncWebClient(base_url=...)`), and `response_url`s in the
payloads we sign point at it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T1"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's published example secret
BOT_TOKEN = "xoxb-test-token"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    answer: dict[str, Any] = field(default_factory=dict)  # what the Web API answered (e.g. a post's ts)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.hooks: list[Call] = []
        self.downloads: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, bytes] = {}  # file id -> bytes posted to its upload URL
        self._file_ids = itertools.count(1)
        self.locales: dict[str, str] = {}
        self.hook_status = 200
        # Faults to answer before the real answer, per Web API method: (status, headers), consumed in order.
        self.faults: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self._ts = itertools.count(1)
        self._hook_ids = itertools.count(1)
        self.server: TestServer | None = None
        self.ws: web.WebSocketResponse | None = None
        self.ws_received: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack_sdk sends some methods as GET
        app.router.add_post("/hook/{id}", self._hook)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_post("/upload/{id}", self._upload)  # files.getUploadURLExternal's upload URL
        app.router.add_get("/link", self._ws)  # Socket Mode WebSocket
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def base(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/")).rstrip("/")

    @property
    def api_url(self) -> str:
        return self.base + "/api/"  # trailing slash: slack_sdk joins with urljoin

    def new_hook(self) -> str:
        return f"{self.base}/hook/{next(self._hook_ids)}"

    def file_url(self, name: str) -> str:
        return f"{self.base}/files/{name}"

    # -- handlers -------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        ctype = request.headers.get("Content-Type", "")
        if "json" in ctype:
            params = json.loads(raw or b"{}")
        else:
            params = dict(parse_qsl(raw.decode()))
            for k in ("blocks", "attachments"):
                if isinstance(params.get(k), str):
                    params[k] = json.loads(params[k])
        params.update({k: v for k, v in request.query.items() if k not in params})
        call = Call(method, params, dict(request.headers))
        self.calls.append(call)
        self._notify()
        queued = self.faults.get(method)
        if queued:
            status, headers = queued.pop(0)
            if status == 429:
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
            return web.Response(status=status, text="upstream trouble", headers=headers)
        auth = request.headers.get("Authorization", "")
        if method not in ("apps.connections.open", "oauth.v2.access") and not auth.startswith("Bearer xoxb-"):
            return web.json_response({"ok": False, "error": "not_authed"})
        call.answer = self._answer(method, params)
        return web.json_response(call.answer)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "mailcheck",
                    "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID}
        if method == "users.info":
            user = params.get("user", "")
            return {"ok": True, "user": {"id": user, "locale": self.locales.get(user, "en-US"),
                                         "tz": "Asia/Tokyo"}}
        if method == "conversations.replies":
            key = (params.get("channel", ""), params.get("ts", ""))
            msg = self.messages.get(key)
            return {"ok": True, "messages": [msg] if msg else [], "has_more": False}
        if method == "conversations.history":  # newest first, like Slack
            channel = params.get("channel", "")
            found = sorted((m for (ch, _ts), m in self.messages.items() if ch == channel),
                           key=lambda m: float(m.get("ts") or 0), reverse=True)
            return {"ok": True, "messages": found[: int(params.get("limit") or 100)], "has_more": False}
        if method == "files.info":
            name = params.get("file", "")
            return {"ok": True, "file": {"id": name, "name": name, "size": len(self.files.get(name, b"")),
                                         "mimetype": "message/rfc822", "url_private": self.file_url(name)}}
        if method == "oauth.v2.access":
            return {"ok": True, "app_id": "A1", "authed_user": {"id": "U1"}, "scope": "commands,chat:write",
                    "token_type": "bot", "access_token": "xoxb-installed-T2", "bot_user_id": BOT_USER,
                    "team": {"id": "T2", "name": "Second"}, "enterprise": None, "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.base.replace("http://", "ws://") + "/link"}
        if method == "files.getUploadURLExternal":
            file_id = f"FUP{next(self._file_ids)}"
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.base}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            files = json.loads(params.get("files") or "[]")
            if any(f.get("id") not in self.uploads for f in files):
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            return {"ok": True, "channel": params.get("channel"), "ts": f"{1700000000 + next(self._ts)}.000100"}
        return {"ok": True}

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.hooks.append(Call(f"hook/{request.match_info['id']}", body, dict(request.headers)))
        self._notify()
        if self.hook_status != 200:
            return web.Response(status=self.hook_status, text="expired_url")
        return web.Response(text="ok")

    async def _file(self, request: web.Request) -> web.Response:
        self.downloads.append(Call("file", {"name": request.match_info["name"]}, dict(request.headers)))
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.Response(status=403)
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="message/rfc822")

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["id"]] = await request.read()
        self._notify()
        return web.Response(text="OK - 1")

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws = ws
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "fake"},
                            "connection_info": {"app_id": "A1"}})
        self._notify()
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                self.ws_received.append(json.loads(msg.data))
                self._notify()
        return ws

    async def send_envelope(self, envelope: dict[str, Any]) -> None:
        assert self.ws is not None, "no Socket Mode connection"
        await self.ws.send_json(envelope)

    def _notify(self) -> None:
        self.changed.set()

    # -- queries ----------------------------------------------------------------------
    def api(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self) -> list[Call]:
        return self.api("chat.postMessage")

    async def wait_for(self, predicate: Any, timeout: float = 40.0) -> None:
        """A hang guard, not a speed test: the default outlasts the test bot's check
        deadline (20 s + 5 s grace), within which the bot always answers something."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting; calls={[c.method for c in self.calls]} "
                                     f"hooks={len(self.hooks)}\n{_pending_tasks()}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass


def _pending_tasks() -> str:
    """Where every other task of the loop is waiting: makes a hang in CI diagnosable."""
    import io

    out = io.StringIO()
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is current:
            continue
        out.write(f"--- {task.get_name()} {task.get_coro()!r}\n")
        task.print_stack(limit=8, file=out)
    return out.getvalue()[-6000:]


# -- signing like Slack --------------------------------------------------------------------
def signature(secret: str, timestamp: str, body: str | bytes) -> str:
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }


_TRIGGERS = itertools.count(1)


def new_trigger_id() -> str:
    """Slack's shape (`<digits>.<digits>.<hex>`); a new one per invocation, as Slack sends."""
    return f"{next(_TRIGGERS)}.47445629121.{hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:32]}"


def slash_body(text: str, response_url: str, *, user: str = "U1", channel: str = "C1",
               team: str = TEAM, trigger_id: str | None = None) -> str:
    return urlencode({
        "token": "legacy", "team_id": team, "team_domain": "test", "channel_id": channel,
        "channel_name": "general", "user_id": user, "user_name": "alice", "command": "/mailcheck",
        "text": text, "api_app_id": "A1", "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    })


def event_body(event: dict[str, Any], *, event_id: str, team: str = TEAM) -> str:
    return json.dumps({
        "token": "legacy", "team_id": team, "api_app_id": "A1", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True, "enterprise_id": None,
                            "is_enterprise_install": False}],
    })


def action_body(action_id: str, value: str, response_url: str, *, user: str = "U1", channel: str = "C1",
                message_ts: str = "1700000001.000100", ephemeral: bool = True,
                trigger_id: str | None = None) -> str:
    payload = {
        "type": "block_actions", "team": {"id": TEAM, "domain": "test"}, "user": {"id": user},
        "api_app_id": "A1", "trigger_id": trigger_id or new_trigger_id(), "response_url": response_url,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": ephemeral},
        "channel": {"id": channel}, "actions": [{"action_id": action_id, "block_id": "b", "value": value,
                                                 "type": "button", "action_ts": str(time.time())}],
    }
    return urlencode({"payload": json.dumps(payload)})


_URL = re.compile(r"https?://[^\s<>]+")


def slack_escape(text: str) -> str:
    """What Slack delivers for a pasted text: &<> escaped, URLs wrapped as <url>."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _URL.sub(lambda m: f"<{m.group(0)}>", out)
