"""Encryption of small secrets at rest (TOTP seeds), with Fernet from `cryptography`."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

# Django's signing key on a development machine (DEBUG, and the demo): never in production.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use"


def development_key(secret_key):
    """The key used without FIELD_ENCRYPTION_KEYS (development only: settings refuses an empty
    list outside DEBUG), derived from SECRET_KEY."""
    digest = hashlib.sha256(b"tenantlink-field-encryption:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


class Undecryptable(ValueError):
    """A stored secret that none of FIELD_ENCRYPTION_KEYS opens: an instance started without the
    key that encrypted it (README: Rotating the seed encryption key)."""


def _fernet():
    keys = settings.FIELD_ENCRYPTION_KEYS or [development_key(settings.SECRET_KEY)]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def reencrypt(token: str) -> str:
    """The same secret encrypted with the newest key (the first of FIELD_ENCRYPTION_KEYS)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise Undecryptable("The value cannot be decrypted with the configured keys.") from None


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise Undecryptable("The value cannot be decrypted with the configured keys.") from None
