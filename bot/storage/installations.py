"""Slack installations: bot tokens (encrypted at rest) and OAuth state, on slack_sdk's tables."""


from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import and_, delete, or_, select

from bot.storage import tables as t
from bot.storage.common import (
    StoreBase,
    _db,
    _utcnow,
)

log = logging.getLogger(__name__)


class InstallationsStore(StoreBase):
    # -- installations ----------------------------------------------------------------
    async def bot_token(self, team_id: str, enterprise_id: str | None = None) -> str | None:
        """The newest bot token installed for a workspace (any client id), else None."""
        b = t.slack_bots.c
        q = select(b.bot_token).where(and_(b.team_id == team_id, b.bot_token.is_not(None)))
        client_id = os.environ.get("SLACK_CLIENT_ID")
        if client_id:
            q = q.where(b.client_id == client_id)
        if enterprise_id is not None:
            q = q.where(or_(b.enterprise_id == enterprise_id, b.enterprise_id.is_(None)))
        async with self.engine.begin() as conn:
            row = (await conn.execute(q.order_by(b.installed_at.desc()).limit(1))).first()
        if row is None:
            return None
        return self._decrypt_token(str(row[0]))

    def _decrypt_token(self, value: str | None) -> str | None:
        from bot.storage.crypto import TokenCipher, decrypt_without_key

        cipher = TokenCipher.from_env()
        return cipher.decrypt(value) if cipher is not None else decrypt_without_key(value)

    def installation_store(self, client_id: str | None = None) -> Any:
        """slack_sdk's AsyncSQLAlchemyInstallationStore on this database (tables already migrated);
        with MAILCHECK_SECRET_KEY set, bot/user tokens are encrypted at rest (bot/storage/crypto.py)."""
        from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

        from bot.storage.crypto import TokenCipher, encrypting_installation_store

        cid = client_id or os.environ.get("SLACK_CLIENT_ID") or "mailcheck"
        return encrypting_installation_store(AsyncSQLAlchemyInstallationStore, TokenCipher.from_env(),
                                             client_id=cid, engine=self.engine)

    def oauth_state_store(self, expiration_seconds: int = 600) -> Any:
        """slack_sdk's AsyncSQLAlchemyOAuthStateStore on this database, with a one-time consume
        that is atomic across replicas (DELETE ... RETURNING instead of select-then-delete)."""
        from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

        engine = self.engine

        class _AtomicStateStore(AsyncSQLAlchemyOAuthStateStore):
            async def async_consume(self, state: str) -> bool:
                c = self.oauth_states.c
                now = _db(_utcnow())
                try:
                    async with engine.begin() as conn:
                        res = await conn.execute(
                            delete(self.oauth_states)
                            .where(and_(c.state == state, c.expire_at > now))
                            .returning(c.id)
                        )
                        return res.first() is not None
                except Exception as exc:  # same contract as slack_sdk: False, logged
                    self.logger.warning("OAuth state lookup failed: %s", type(exc).__name__)
                    return False

        return _AtomicStateStore(expiration_seconds=expiration_seconds, engine=engine)

