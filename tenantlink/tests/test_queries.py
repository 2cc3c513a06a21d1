"""The hot-path query helpers: a prepared query answers as the ORM would, composed only once."""

import datetime
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.companies.models import Licence
from tenantlink.conftest import make_user
from tenantlink.lib import queries
from tenantlink.lib.queries import Prepared, check_prepared, insert, update


def joined_by(user_id, now):
    return User.objects.filter(pk=user_id, date_joined__lte=now, is_active=True)


def test_a_prepared_query_answers_as_the_orm_does(contoso):
    ada, ben = make_user("ada", contoso), make_user("ben", contoso, is_active=False)
    prepared = Prepared(joined_by, "exists", user_id=int, now=datetime.datetime)
    moments = (timezone.now(), ada.date_joined - datetime.timedelta(seconds=1), ada.date_joined)
    for user_id in (ada.pk, ben.pk, ada.pk + ben.pk + 1000):
        for now in moments:
            assert prepared.exists(user_id=user_id, now=now) == joined_by(user_id, now).exists(), (user_id, now)
    assert prepared.exists(user_id=ada.pk, now=timezone.now()) and not prepared.exists(
        user_id=ben.pk, now=timezone.now()
    )


def test_it_is_composed_once(contoso, monkeypatch):
    ada = make_user("ada", contoso)
    compiled = []
    as_sql = SQLCompiler.as_sql
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *args, **kwargs: compiled.append(1) or as_sql(self, *args, **kwargs)
    )
    prepared = Prepared(joined_by, "exists", user_id=int, now=datetime.datetime)
    for _ in range(5):
        assert prepared.exists(user_id=ada.pk, now=timezone.now())
    assert len(compiled) == 1


def test_a_value_the_query_changes_on_its_way_is_refused(contoso):
    prepared = Prepared(lambda user_id: User.objects.filter(pk=user_id + 1), "exists", user_id=int)
    with pytest.raises(ImproperlyConfigured):
        prepared.exists(user_id=1)
    with pytest.raises(TypeError):
        Prepared(joined_by, "exists", user_id=int, now=datetime.datetime).exists(user_id=1)


def test_a_prepared_query_runs_only_the_way_it_is_composed_for(contoso):
    ada = make_user("ada", contoso)
    prepared = Prepared(joined_by, "exists", user_id=int, now=datetime.datetime)
    with pytest.raises(TypeError, match=r"composed for exists\(\), not one\(\)"):
        prepared.one(user_id=ada.pk, now=timezone.now())
    with pytest.raises(ValueError, match="use must be one of"):
        Prepared(joined_by, "first", user_id=int, now=datetime.datetime)


def fields_of(instance):
    # repr() tells a converted value from a raw one (on SQLite a date left a string, a flag 0/1).
    return {field.attname: repr(getattr(instance, field.attname)) for field in type(instance)._meta.concrete_fields}


def test_a_prepared_one_gives_the_instances_the_orm_gives(contoso, northwind):
    from tenantlink.sso.flows import _identity
    from tenantlink.sso.models import Connection, Integration

    tenant = uuid.uuid4()
    integration = Integration.objects.create(company=contoso, tenant_id=tenant, display_name="Contoso")
    ada, olga, nils = make_user("ada", contoso), make_user("olga", None), make_user("nils", northwind)
    ada.last_login = timezone.now()
    ada.save()
    for user in (ada, olga, nils):  # olga and nils are not of the integration's company
        Connection.objects.create(user=user, integration=integration, tid=tenant, oid=uuid.uuid4())
    prepared = Prepared(_identity, tid=uuid.UUID, oid=uuid.UUID, now=datetime.datetime)
    seen = set()
    for connection in Connection.objects.all():
        for now in (timezone.now(), timezone.now() + datetime.timedelta(days=365)):
            found = prepared.one(tid=connection.tid, oid=connection.oid, now=now)
            expected = _identity(connection.tid, connection.oid, now).first()
            if expected is None:
                assert found is None
                continue
            seen.add(found.user.username)
            assert fields_of(found) == fields_of(expected)
            assert fields_of(found.user) == fields_of(expected.user)
            assert fields_of(found.integration) == fields_of(expected.integration)
            assert fields_of(found.user.company) == fields_of(expected.user.company)
            assert found.licensed is expected.licensed
    assert seen == {"ada"}
    ada_connection = Connection.objects.get(user=ada)
    assert prepared.one(tid=tenant, oid=ada_connection.oid, now=timezone.now()).licensed is True
    assert (
        prepared.one(tid=tenant, oid=ada_connection.oid, now=timezone.now() + datetime.timedelta(days=365)).licensed
        is False
    )
    assert prepared.one(tid=uuid.uuid4(), oid=ada_connection.oid, now=timezone.now()) is None


def test_a_prepared_delete_removes_only_its_rows(contoso, northwind):
    northwind.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30))
    prepared = Prepared(
        lambda company, product: Licence.objects.filter(company=company, product=product),
        "delete",
        company=int,
        product=str,
    )
    assert prepared.delete(company=contoso.pk, product="another product") == 0
    assert prepared.delete(company=contoso.pk, product=Licence.Product.SSO) == 1
    assert list(Licence.objects.values_list("company__name", flat=True)) == ["Northwind Traders"]


def test_an_insert_writes_what_save_writes(contoso):
    from tenantlink.audit.models import AuditEvent

    ada = make_user("ada", contoso)
    fields = {
        "action": "signin_succeeded",
        "actor": ada,
        "company": contoso,
        "target_user": ada,
        "target_label": "ada",
        "client_ip": "2001:db8::1",
        "user_agent": "Browser/1.0",
        "details": {"method": "totp", "list": [1, "ü"]},
    }
    insert(AuditEvent(**fields))
    AuditEvent(**fields).save()
    inserted, saved = (fields_of(event) for event in AuditEvent.objects.order_by("pk"))
    for written in (inserted, saved):
        written.pop("id"), written.pop("created_at")
    assert inserted == saved
    assert AuditEvent.objects.filter(details__list=[1, "ü"], client_ip="2001:db8::1").count() == 2


def test_an_update_writes_only_its_fields_and_tells_a_row_that_is_gone(contoso):
    ada = make_user("ada", contoso)
    before = fields_of(User.objects.get(pk=ada.pk))
    moment = timezone.now() - datetime.timedelta(days=3)
    ada.last_login, ada.display_name = moment, "Not written"
    assert update(ada, "last_login") == 1
    after = User.objects.get(pk=ada.pk)
    assert after.last_login == moment
    assert {**fields_of(after), "last_login": None} == {**before, "last_login": None}
    User.objects.filter(pk=ada.pk).delete()
    assert update(ada, "last_login") == 0
    for not_a_column in ("id", "groups", "no_such_field"):
        with pytest.raises(ValueError, match="has no column"):
            update(ada, not_a_column)


@pytest.mark.django_db
def test_a_prepared_query_that_cannot_be_composed_is_reported_before_any_request():
    from tenantlink.accounts import flows, models, sessions
    from tenantlink.companies.models import _sso_licence
    from tenantlink.sso import flows as sso_flows
    from tenantlink.sso import models as sso_models

    assert check_prepared(databases=["default"]) == []
    portal = {sessions._read, sessions._delete, flows._pending, models._by_username, _sso_licence}
    portal |= {sso_flows._connection_of, sso_flows._still_usable, sso_models._unexpired, sso_models._by_id}
    assert portal <= set(queries._everyone)  # the check saw every one of the portal's own
    # The sign-in's lookup composes as the one row it reads, not as an EXISTS: its licence
    # annotation (which carries `now`) would be dropped.
    broken = Prepared(sso_flows._identity, "exists", tid=uuid.UUID, oid=uuid.UUID, now=datetime.datetime)  # noqa: F841
    # A deployment's `migrate` checks its database first, and stops.
    with pytest.raises(SystemCheckError, match=r"_identity\(tid, oid, now\): \(tenantlink.E001\) .* now does not"):
        call_command("migrate", verbosity=0, skip_checks=False)
