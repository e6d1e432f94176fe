"""DATABASE_URL handling: the default SQLite file and driver rewriting.

`DATABASE_URL` unset -> a SQLite file at `$XDG_DATA_HOME/mailcheck/mailcheck.db`
(`~/.local/share/mailcheck/mailcheck.db` when XDG_DATA_HOME is unset). URLs are
accepted as operators write them (`sqlite:///PATH`, `postgres://...`,
`postgresql://...`) and rewritten to the async drivers (`sqlite+aiosqlite`,
`postgresql+asyncpg`).

PostgreSQL extra: a libpq-style `options=-csearch_path=SCHEMA` query parameter
(as Heroku-like platforms and psql accept) selects the schema; asyncpg does
not understand `options`, so it becomes the connection's `search_path`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


class DatabaseURLError(ValueError):
    """DATABASE_URL cannot be used (one clear line)."""


def default_sqlite_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mailcheck" / "mailcheck.db"


@dataclass
class DatabaseTarget:
    url: str  # SQLAlchemy async URL
    dialect: str  # "sqlite" | "postgresql"
    connect_args: dict[str, Any] = field(default_factory=dict)
    sqlite_path: Path | None = None  # None for ":memory:" and PostgreSQL
    schema: str | None = None

    def redacted(self) -> str:
        return redact(self.url)


_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([A-Za-z0-9_,\"$ ]+)")


def redact(url: str) -> str:
    """The URL with its password replaced (for logs and errors)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def resolve_url(url: str | None = None) -> DatabaseTarget:
    """url None -> $DATABASE_URL -> the default SQLite file."""
    raw = (url or os.environ.get("DATABASE_URL") or "").strip()
    if not raw:
        path = default_sqlite_path()
        return DatabaseTarget(f"sqlite+aiosqlite:///{path}", "sqlite", sqlite_path=path)
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise DatabaseURLError(f"DATABASE_URL is not a URL: {redact(raw)!r}")
    base = scheme.lower().split("+", 1)[0]
    if base == "sqlite":
        # sqlite:///relative.db, sqlite:////abs/path.db, sqlite:///:memory:
        path_text = rest[1:] if rest.startswith("/") else rest
        path_text = path_text.split("?", 1)[0]
        if path_text in ("", ":memory:"):
            return DatabaseTarget("sqlite+aiosqlite:///:memory:", "sqlite")
        path = Path(unquote(path_text)).expanduser()
        return DatabaseTarget(f"sqlite+aiosqlite:///{path}", "sqlite", sqlite_path=path)
    if base in ("postgres", "postgresql", "pgsql"):
        parts = urlsplit("postgresql+asyncpg://" + rest)
        query = []
        schema = None
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "options":
                m = _SEARCH_PATH.search(value)
                if m:
                    schema = m.group(1).strip().strip('"')
                continue  # asyncpg has no `options`
            if key == "sslmode":
                # libpq spelling; asyncpg calls it `ssl`.
                query.append(("ssl", value))
                continue
            query.append((key, value))
        new = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        return DatabaseTarget(new, "postgresql", connect_args=connect_args, schema=schema)
    raise DatabaseURLError(
        f"unsupported DATABASE_URL scheme {scheme!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )
