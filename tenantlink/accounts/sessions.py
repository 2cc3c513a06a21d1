"""The session engine (SESSION_ENGINE): Django's database sessions with fewer round trips.

- A request reads its session together with the signed-in user and their company, in one query;
  AccountBackend.get_user takes that user instead of reading it again. The statement is composed
  once per database from the models' fields, not compiled again by the ORM on every request.
- A new session key is not first looked up: the key is 32 random characters, and the INSERT's
  unique constraint still refuses a duplicate (create() then draws another).
- Rotating the key at sign-in (cycle_key) deletes the old row at once and writes the new one
  once, with its data, when the response is saved — not an empty row first and an UPDATE later.
- Outside a transaction, a save is its single INSERT or UPDATE, without BEGIN and COMMIT around
  it.
"""

import contextlib
import contextvars

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.core.signals import request_started
from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from tenantlink.lib.queries import delete_rows

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


class _Read:
    """SELECT a session with its user and the user's company (both may be missing), and turn the
    row into the three model instances as the ORM does: every column through its field's
    converters, then Model.from_db, with each foreign key's cached object set. The ORM would
    compose and compile this same statement anew on every request, which costs more CPU than
    running it."""

    def __init__(self, using):
        from tenantlink.accounts.models import Session, User
        from tenantlink.companies.models import Company

        self.using, connection = using, connections[using]  # only for composing: each thread has its own
        name = connection.ops.quote_name
        self.parts, columns, start = [], [], 0
        for model, alias in ((Session, "s"), (User, "u"), (Company, "c")):
            fields = model._meta.concrete_fields
            converters = []
            for index, field in enumerate(fields, start):
                column = field.get_col(alias)
                found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                converters += [(index, found, column)] if found else []
            columns += [f"{alias}.{name(field.column)}" for field in fields]
            pk = start + fields.index(model._meta.pk)  # NULL when the LEFT JOIN found no row
            self.parts.append((model, [field.attname for field in fields], pk, start, start + len(fields), converters))
            start += len(fields)
        user, company, key, expiry = (
            Session._meta.get_field("user"),
            User._meta.get_field("company"),
            Session._meta.get_field("session_key"),
            Session._meta.get_field("expire_date"),
        )
        self.relations = (user, company)
        self.expiry = expiry
        # Only names from the models, quoted; the values are parameters.
        self.sql = (
            f"SELECT {', '.join(columns)} FROM {name(Session._meta.db_table)} s"  # noqa: S608
            f" LEFT JOIN {name(User._meta.db_table)} u ON u.{name(User._meta.pk.column)} = s.{name(user.column)}"
            f" LEFT JOIN {name(Company._meta.db_table)} c ON c.{name(Company._meta.pk.column)} = u.{name(company.column)}"
            f" WHERE s.{name(key.column)} = %s AND s.{name(expiry.column)} > %s"
        )

    def __call__(self, session_key):
        """The unexpired session with this key, its `user` (with `company`) loaded; or None."""
        connection = connections[self.using]  # this thread's
        now = self.expiry.get_db_prep_value(timezone.now(), connection)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [session_key, now])
            row = cursor.fetchone()
        if row is None:
            return None
        row = list(row)
        session, user, company = (
            None
            if row[pk] is None
            else model.from_db(self.using, names, _converted(row, start, end, converters, connection))
            for model, names, pk, start, end, converters in self.parts
        )
        self.relations[0].set_cached_value(session, user)
        if user is not None:
            self.relations[1].set_cached_value(user, company)
        return session


def _converted(row, start, end, converters, connection):
    for index, found, column in converters:
        for converter in found:
            row[index] = converter(row[index], column, connection)
    return row[start:end]


_reads = {}  # database alias → its _Read


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
        using = router.db_for_read(self.model)
        read = _reads.get(using) or _reads.setdefault(using, _Read(using))
        session = read(self.session_key) if self.session_key else None
        if session is None:
            self._session_key = None
        return session

    def _get_new_session_key(self):
        return get_random_string(32, VALID_KEY_CHARS)

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = data.get(SESSION_KEY)
        return session

    def cycle_key(self):
        data, old_key = self._session, self.session_key
        self._session_key = None  # save() creates the new row, with the data
        self._session_cache = data
        self.modified = True
        if old_key:
            self.delete(old_key)

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        session = self.create_model_instance(self._get_session(no_load=must_create))
        using = router.db_for_write(self.model, instance=session)
        # Inside a transaction the savepoint keeps a failed INSERT from breaking it.
        guard = transaction.atomic(using=using) if connections[using].in_atomic_block else contextlib.nullcontext()
        try:
            with guard:
                session.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is not None:
            delete_rows(self.model.objects.filter(session_key=session_key))
