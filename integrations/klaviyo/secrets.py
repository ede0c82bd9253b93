"""Encryption of stored secrets (OAuth tokens, legacy API keys).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``, with keys from
the ENCRYPTION_KEYS setting and never from SECRET_KEY. The first key
encrypts; every listed key decrypts, which is how keys are rotated.
"""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Used only with DEBUG on and no ENCRYPTION_KEYS, so that a fresh checkout
# runs; a system check refuses it in production.
_DEVELOPMENT_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"development encryption key, never for production").digest()
).decode()


class SecretDecryptionError(ImproperlyConfigured):
    """A stored secret cannot be read with any of the configured keys."""


def encryption_keys():
    keys = list(settings.ENCRYPTION_KEYS)
    if keys:
        return keys
    if settings.DEBUG:
        return [_DEVELOPMENT_KEY]
    raise ImproperlyConfigured(
        "Set ENCRYPTION_KEYS to one or more Fernet keys (comma-separated; make "
        "one with `python manage.py generate_encryption_key`)."
    )


@functools.cache
def _fernet(keys):
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "ENCRYPTION_KEYS must hold Fernet keys: 32 url-safe base64-encoded "
            "bytes each."
        ) from None


def _current_fernet():
    return _fernet(tuple(encryption_keys()))


def encrypt(plaintext):
    """Return the ciphertext of ``plaintext``; ``""`` stays ``""``."""
    if not plaintext:
        return ""
    return _current_fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext):
    """Return the plaintext of ``ciphertext``; ``""`` stays ``""``."""
    if not ciphertext:
        return ""
    try:
        return _current_fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with any key in ENCRYPTION_KEYS; "
            "the key that encrypted it was removed too early."
        ) from None


def reencrypt(ciphertext):
    """Return ``ciphertext`` encrypted again with the first key."""
    if not ciphertext:
        return ""
    return _current_fernet().rotate(ciphertext.encode()).decode()


def generate_key():
    return Fernet.generate_key().decode()
