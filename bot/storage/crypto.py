"""OAuth tokens encrypted at rest when `MAILCHECK_SECRET_KEY` is set.

The key is a Fernet key (`python -c "from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())"`) or any passphrase of 16+ characters
(stretched with SHA-256 into one). Stored values then look like
`enc1:<fernet token>`; rows written without a key stay readable (plaintext is
passed through), so a key can be introduced on a running deployment and new
installs are encrypted from then on. Without a key nothing is encrypted and
everything keeps working. Losing the key means re-installing the app.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "enc1:"
TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")


class TokenCipher:
    def __init__(self, key: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        keys = [k.strip() for k in key.split(",") if k.strip()]  # "new,old": rotation
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    @classmethod
    def from_env(cls, env: Any = None) -> TokenCipher | None:
        key = (os.environ if env is None else env).get("MAILCHECK_SECRET_KEY") or ""
        return cls(key) if key.strip() else None

    def encrypt(self, value: str | None) -> str | None:
        if not value or value.startswith(PREFIX):
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, value: str | None) -> str | None:
        if not value or not value.startswith(PREFIX):
            return value  # written before the key was set
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode()
        except InvalidToken:
            log.error("a stored Slack token cannot be decrypted with MAILCHECK_SECRET_KEY (wrong or rotated key)")
            return None


def _fernet_key(key: str) -> bytes:
    raw = key.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, TypeError):
        pass
    if len(key) < 16:
        raise ValueError("MAILCHECK_SECRET_KEY must be a Fernet key or a passphrase of at least 16 characters")
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def decrypt_without_key(value: str | None) -> str | None:
    """A stored token read by a key-less process: encrypted ones are unusable."""
    if value and value.startswith(PREFIX):
        log.error("stored Slack tokens are encrypted but MAILCHECK_SECRET_KEY is not set")
        return None
    return value


def _transform(obj: Any, fn: Any) -> Any:
    if obj is None:
        return None
    out = copy.copy(obj)
    for name in TOKEN_FIELDS:
        if hasattr(out, name):
            setattr(out, name, fn(getattr(out, name)))
    return out


def encrypting_installation_store(base_cls: type, cipher: TokenCipher | None, **kwargs: Any) -> Any:
    """`base_cls` (slack_sdk's AsyncSQLAlchemyInstallationStore) whose bot and user
    tokens are encrypted before every write and decrypted after every read."""
    dec = cipher.decrypt if cipher is not None else decrypt_without_key

    class EncryptingInstallationStore(base_cls):  # type: ignore[valid-type,misc]
        async def async_save(self, installation: Any) -> None:
            if cipher is not None:
                installation = _transform(installation, cipher.encrypt)
            await super().async_save(installation)

        async def async_save_bot(self, bot: Any) -> None:
            if cipher is not None:
                bot = _transform(bot, cipher.encrypt)  # idempotent: already-encrypted values pass
            await super().async_save_bot(bot)

        async def async_find_bot(self, **kw: Any) -> Any:
            return _transform(await super().async_find_bot(**kw), dec)

        async def async_find_installation(self, **kw: Any) -> Any:
            return _transform(await super().async_find_installation(**kw), dec)

    return EncryptingInstallationStore(**kwargs)
