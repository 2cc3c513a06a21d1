"""Query helpers for the hottest paths."""

import contextlib
import datetime
import uuid
import weakref
from importlib import import_module

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models.query import get_related_populators
from django.db.models.sql import DeleteQuery

_writes = {}  # ("insert" or "update", model, field names, database alias) → (SQL, fields), composed once


def _compose_insert(model, connection, _names):
    name = connection.ops.quote_name
    fields = [field for field in model._meta.local_concrete_fields if field is not model._meta.auto_field]
    columns = ", ".join(name(field.column) for field in fields)
    # Only names from the model, quoted; the values are parameters.
    sql = f"INSERT INTO {name(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
    return sql, fields


def insert(instance):
    """Write `instance` as a new row with one INSERT composed once per model and database, each
    value as its field prepares it for saving. Model.save() composes the statement anew every
    time (and sends signals); for rows written on every sign-in that costs more than the write.
    An automatic primary key is not read back."""
    _write("insert", instance, ())


def _compose_update(model, connection, names):
    name = connection.ops.quote_name
    key = model._meta.pk
    writable = {
        field.name: field for field in model._meta.local_concrete_fields if field is not key and not field.generated
    }
    if set(names) - writable.keys():
        raise ValueError(f"{model.__name__} has no column {sorted(set(names) - writable.keys())} an UPDATE may write")
    fields = [writable[field_name] for field_name in names] if names else list(writable.values())
    assignments = ", ".join(f"{name(field.column)} = %s" for field in fields)
    # Only names from the model, quoted; the values are parameters.
    sql = f"UPDATE {name(model._meta.db_table)} SET {assignments} WHERE {name(key.column)} = %s"  # noqa: S608
    return sql, [*fields, key]


def update(instance, *names):
    """Write the fields `names` of `instance` (all but the key when none are named) to its row,
    with one UPDATE composed once per model, fields and database: save() composes it anew every
    time, and sends signals. How many rows changed (0: the row is gone)."""
    return _write("update", instance, names)


def _write(kind, instance, names):
    """Run the INSERT or UPDATE (`kind`) of `instance`, composed once per model, field names and
    database, each value as its field prepares it for saving; how many rows it wrote."""
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    key = (kind, model, names, using)
    compose = _compose_insert if kind == "insert" else _compose_update
    sql, fields = _writes.get(key) or _writes.setdefault(key, compose(model, connection, names))
    adding = kind == "insert"
    with connection.cursor() as cursor:
        cursor.execute(sql, [field.get_db_prep_save(field.pre_save(instance, adding), connection) for field in fields])
        return cursor.rowcount


# Values no query of the portal holds by itself, one per variable: found again among the
# parameters of the compiled statement, they mark where each variable's value goes.
_SAMPLES = {
    int: lambda index: 2_000_003_011 + 7_919 * index,
    str: lambda index: f"\x1fprepared-sample-{index}-\x1e",
    uuid.UUID: lambda index: uuid.UUID(int=0x7E57_0000_0000_4000_8000_0000_0000_0000 + index),
    datetime.datetime: lambda index: datetime.datetime(2003, 4, 5, 6, 7, 8, 100 + index, tzinfo=datetime.UTC),
}


def _adapted(value, connection):
    """The value as the ORM passes it to the database for a column of its kind."""
    if isinstance(value, datetime.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, uuid.UUID) and not connection.features.has_native_uuid_field:
        return value.hex
    if isinstance(value, str) and type(value) is not str:  # a TextChoices member
        return str(value)
    return value


class _Rows:
    """How the ORM turns a row of a compiled SELECT into a model instance: the columns through
    their fields' converters, Model.from_db, select_related's related objects, annotations."""

    def __init__(self, compiler, using):
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        self.using, self.model = using, klass_info["model"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.names = [column[0].target.attname for column in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, using)
        self.annotations = compiler.annotation_col_map.items()
        # Bound to the composing thread's connection, but they only read its settings (time zone);
        # each run hands them its own thread's connection.
        self.converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]]).items()

    def instance(self, row, connection):
        row = list(row)
        for position, (converters, expression) in self.converters:
            for converter in converters:
                row[position] = converter(row[position], expression, connection)
        instance = self.model.from_db(self.using, self.names, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, instance)
        for name, position in self.annotations:
            setattr(instance, name, row[position])
        return instance


_everyone = weakref.WeakSet()  # every Prepared in use, for the system check below
_USES = ("one", "exists", "delete")


class Prepared:
    """A query run on (nearly) every request, or on every sign-in: the ORM composes and compiles
    its SQL once per database, and each run only binds new values. Composing a query
    with joins costs a millisecond or more of CPU; running it, a few hundredths.

    `build(**values)` returns the queryset. `kinds` names each value's type (int, str, UUID or an
    aware datetime); the queryset must hand each value to the database as it is, compared with a
    column (it is found among the compiled parameters by a sample value of its own, and a query
    that changes it on the way is refused with ImproperlyConfigured). `use` says how it runs:
    "one" (the default), "exists" or "delete"; the system check below composes it that way, and
    it runs no other way."""

    def __init__(self, build, use="one", **kinds):
        if use not in _USES:
            raise ValueError(f"use must be one of {', '.join(_USES)}, not {use!r}")
        self.build, self.use, self.kinds = build, use, kinds
        self.samples = {name: _SAMPLES[kind](index) for index, (name, kind) in enumerate(kinds.items())}
        self._model = None
        self._statements = {}  # database alias → (SQL, parameters, {name: positions}, rows)
        _everyone.add(self)

    def exists(self, **values):
        """Whether the query finds a row."""
        with self._cursor("exists", values) as (cursor, _rows, _connection):
            return cursor.fetchone() is not None

    def one(self, **values):
        """The instance of the row found (with select_related objects and annotations), or None.
        For lookups by a unique key: unlike QuerySet.first(), nothing orders the rows."""
        with self._cursor("one", values) as (cursor, rows, connection):
            row = cursor.fetchone()
        return None if row is None else rows.instance(row, connection)

    def delete(self, **values):
        """Delete the rows with one DELETE statement; how many went. For rows nothing refers to
        and no signal watches (sessions, pending Microsoft flows): QuerySet.delete() would wrap
        the same statement in a transaction, two more round trips on every sign-in."""
        with self._cursor("delete", values) as (cursor, _rows, _connection):
            return cursor.rowcount

    def _compose(self, using):
        connection = connections[using]  # only for composing: each thread has its own
        queryset = self.build(**self.samples)
        if self.use == "exists":
            compiler = queryset.query.exists().get_compiler(using=using)
        elif self.use == "one":
            compiler = queryset[:1].query.get_compiler(using=using)
        else:
            compiler = queryset.query.chain(DeleteQuery).get_compiler(using=using)
        sql, params = compiler.as_sql()
        positions = {}
        for name, sample in self.samples.items():
            adapted = _adapted(sample, connection)
            positions[name] = [i for i, param in enumerate(params) if type(param) is type(adapted) and param == adapted]
            if not positions[name] or str(sample) in sql:
                raise ImproperlyConfigured(f"{name} does not reach the database as it is given")
        return sql, tuple(params), positions, _Rows(compiler, using) if self.use == "one" else None

    @contextlib.contextmanager
    def _cursor(self, use, values):
        if use != self.use:
            raise TypeError(f"this query is composed for {self.use}(), not {use}()")
        if values.keys() != self.kinds.keys():
            raise TypeError(f"values for {sorted(self.kinds)} expected")
        if self._model is None:
            self._model = self.build(**self.samples).model
        using = router.db_for_write(self._model) if use == "delete" else router.db_for_read(self._model)
        sql, params, positions, rows = self._statements.get(using) or self._statements.setdefault(
            using, self._compose(using)
        )
        connection = connections[using]
        params = list(params)
        for name, value in values.items():
            for position in positions[name]:
                params[position] = _adapted(value, connection)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor, rows, connection


@checks.register(checks.Tags.database)
def check_prepared(app_configs=None, databases=None, **kwargs):
    """Every prepared query composes on each database checked (`migrate` checks its database), so
    that one whose values cannot be found fails at deploy time, not at its first request."""
    if not databases:  # every other command runs database checks with none
        return []
    # The session engine and the views (with the flows they use) are imported by the first
    # request, not at start-up: imported here, so that their queries are checked too.
    import_module(settings.SESSION_ENGINE)
    import_module(settings.ROOT_URLCONF)
    errors = []
    for using in databases:
        for prepared in _everyone:
            try:
                prepared._compose(using)
            except Exception as error:  # whatever the ORM raised while composing it
                errors.append(
                    checks.Error(
                        f"A prepared query cannot be composed for the database {using!r}: {error}",
                        obj=f"{prepared.build.__module__}.{prepared.build.__qualname__}({', '.join(prepared.kinds)})",
                        id="tenantlink.E001",
                    )
                )
    return errors
