"""Test settings: production-like settings with test keys, set before Django starts."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenantlink.settings")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# A fixed Fernet key so tests read what they wrote; never used outside tests.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "q2DA3Ce5nD1c4FZr-dvLJ2C3o8bqSHvDz2VHNS-DHgo=")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

import django  # noqa: E402

django.setup()
