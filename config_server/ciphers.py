"""`{cipher}` values: AES-256-GCM under a key derived (PBKDF2) from the `encrypt_key` secret.

Ciphertext is hex (`nonce ‖ ciphertext ‖ tag`), like Spring's, so it needs no escaping in YAML
or URLs. GCM authenticates: a value encrypted under another key, or altered, is
rejected rather than decrypted to garbage. A value that cannot be decrypted is served the
way Spring serves it: the key becomes `invalid.<key>` with the value `<n/a>`.
"""

from __future__ import annotations

import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from config_server.metrics import INVALID_CIPHERS
from tweetpipe.config_layout import PropertySource

log = logging.getLogger(__name__)

PREFIX = "{cipher}"
INVALID_VALUE = "<n/a>"
_NONCE_BYTES = 12
_KDF_ITERATIONS = 600_000
"""Derived once at start-up, so a slow (brute-force resistant) derivation costs nothing later."""


class InvalidCipher(ValueError):
    """Not a ciphertext made with this server's key."""


class Cipher:
    def __init__(self, secret: str, salt: str) -> None:
        kdf = PBKDF2HMAC(
            algorithm=SHA256(), length=32, salt=salt.encode(), iterations=_KDF_ITERATIONS
        )
        self._aead = AESGCM(kdf.derive(secret.encode()))

    def encrypt(self, plain: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return (nonce + self._aead.encrypt(nonce, plain.encode(), None)).hex()

    def decrypt(self, text: str) -> str:
        text = text.strip().removeprefix(PREFIX)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidCipher("not hex") from None
        if len(raw) <= _NONCE_BYTES:
            raise InvalidCipher("too short")
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except InvalidTag:
            raise InvalidCipher("not encrypted with this key") from None
        try:
            return plain.decode()
        except UnicodeDecodeError:
            raise InvalidCipher("not text") from None


def decrypt_sources(sources: list[PropertySource], cipher: Cipher | None) -> list[PropertySource]:
    """Each source with its `{cipher}` values decrypted, or marked invalid like Spring does."""
    return [_decrypt_source(source, cipher) for source in sources]


def _decrypt_source(source: PropertySource, cipher: Cipher | None) -> PropertySource:
    if not any(_is_cipher(v) for v in source.source.values()):
        return source
    values: dict[str, object] = {}
    for key, value in source.source.items():
        if not _is_cipher(value):
            values[key] = value
            continue
        try:
            if cipher is None:
                raise InvalidCipher("no encrypt_key is configured")
            values[key] = cipher.decrypt(str(value))
        except InvalidCipher as exc:
            INVALID_CIPHERS.inc()
            log.warning(
                "cannot decrypt %s in %s (%s); serving invalid.%s",
                key,
                source.name,
                exc,
                key,
                extra={"config.key": key, "config.source": source.name},
            )
            values[f"invalid.{key}"] = INVALID_VALUE
    return PropertySource(name=source.name, source=values)


def _is_cipher(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)
