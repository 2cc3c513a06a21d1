"""The session engine (SESSION_ENGINE): Django's database sessions with fewer round trips.

- A request reads its session together with the signed-in user and their company, in one query;
  AccountBackend.get_user takes that user instead of reading it again. The statement is composed
  once per database (lib/queries.Prepared), not compiled again by the ORM on every request.
- A new session key is not first looked up: the key is 32 random characters, and the INSERT's
  unique constraint still refuses a duplicate (create() then draws another).
- Rotating the key at sign-in (cycle_key) deletes the old row at once and writes the new one
  once, with its data, when the response is saved — not an empty row first and an UPDATE later.
- Outside a transaction, a save is its single INSERT or UPDATE, without BEGIN and COMMIT around
  it.
"""

import base64
import contextlib
import contextvars
import datetime
import secrets

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.core.signals import request_started
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from tenantlink.lib.queries import Prepared, insert, update

# The user read with the session most recently loaded on this thread (None: no signed-in user),
# forgotten when the next request starts.
_loaded_user = contextvars.ContextVar("loaded_user", default=None)


def _forget_loaded_user(**_kwargs):
    _loaded_user.set(None)


request_started.connect(_forget_loaded_user, dispatch_uid="tenantlink.accounts.sessions.forget_loaded_user")


def take_loaded_user(user_id):
    """The user read with this request's session when its id is `user_id`, else None; once."""
    user = _loaded_user.get()
    _loaded_user.set(None)
    return user if user is not None and str(user.pk) == str(user_id) else None


def _session(session_key):
    from tenantlink.accounts.models import Session

    return Session.objects.filter(session_key=session_key)


def _unexpired(session_key, now):
    return _session(session_key).filter(expire_date__gt=now).select_related("user__company")


_KEY_CHARACTERS = frozenset(VALID_KEY_CHARS)

# Composed once by the ORM (the session, LEFT JOIN its user, LEFT JOIN the user's company), not on
# every request: composing costs more CPU than running it.
_read = Prepared(_unexpired, session_key=str, now=datetime.datetime)
_delete = Prepared(_session, "delete", session_key=str)


class SessionStore(db.SessionStore):
    @classmethod
    def get_model_class(cls):
        from tenantlink.accounts.models import Session

        return Session

    def load(self):
        session = self._get_session_from_db()
        _loaded_user.set(session.user if session else None)
        return self.decode(session.session_data) if session else {}

    def _get_session_from_db(self):
        session = _read.one(session_key=self.session_key, now=timezone.now()) if self.session_key else None
        if session is None:
            self._session_key = None
        return session

    def _validate_session_key(self, key):
        # Only a key of Django's characters is looked up: whatever else a cookie holds (a NUL
        # would make PostgreSQL refuse the query) is no session.
        return bool(key) and 8 <= len(key) <= 40 and _KEY_CHARACTERS.issuperset(key)

    def _get_new_session_key(self):
        # 160 random bits as 32 characters of a–z and 2–7 (all in VALID_KEY_CHARS), from one read
        # of the system's generator: get_random_string reads it once per character.
        return base64.b32encode(secrets.token_bytes(20)).decode().lower()

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = data.get(SESSION_KEY)
        return session

    def cycle_key(self):
        data, old_key = self._session, self.session_key
        if old_key and not _delete.delete(session_key=old_key):
            # Ended since this request read it (signed out in another tab, every session ended):
            # its data, a sign-in among it, must not come back under a new key. Whatever the
            # request adds now goes into a new, empty session.
            data = {}
        self._session_key = None  # save() creates the new row, with the data
        self._session_cache = data
        self.modified = True

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        session = self.create_model_instance(self._get_session(no_load=must_create))
        using = router.db_for_write(self.model, instance=session)
        # Inside a transaction the savepoint keeps a failed INSERT from breaking it.
        connection = connections[using]
        guard = transaction.atomic(using=using) if connection.in_atomic_block else contextlib.nullcontext()
        try:
            with guard:
                if must_create:
                    insert(session)
                elif not update(session):  # deleted meanwhile (signed out elsewhere)
                    raise UpdateError
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            _delete.delete(session_key=session_key)
