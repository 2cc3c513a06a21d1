"""Encryption of small secrets at rest (TOTP seeds), with Fernet from `cryptography`."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet():
    keys = settings.FIELD_ENCRYPTION_KEYS
    if not keys:
        # Development only (settings refuses an empty list outside DEBUG).
        digest = hashlib.sha256(b"tenantlink-field-encryption:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def reencrypt(token: str) -> str:
    """The same secret encrypted with the newest key (the first of FIELD_ENCRYPTION_KEYS)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError("The value cannot be decrypted with the configured keys.") from None


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("The value cannot be decrypted with the configured keys.") from None
