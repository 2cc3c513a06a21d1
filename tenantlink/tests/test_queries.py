"""The hot-path query helpers: a prepared query answers as the ORM would, composed only once."""

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from tenantlink.accounts.models import User
from tenantlink.conftest import make_user
from tenantlink.lib.queries import PreparedExists


def joined_by(user_id, now):
    return User.objects.filter(pk=user_id, date_joined__lte=now, is_active=True)


def test_a_prepared_query_answers_as_the_orm_does(contoso):
    ada, ben = make_user("ada", contoso), make_user("ben", contoso, is_active=False)
    prepared = PreparedExists(joined_by, user_id=int, now=datetime.datetime)
    moments = (timezone.now(), ada.date_joined - datetime.timedelta(seconds=1), ada.date_joined)
    for user_id in (ada.pk, ben.pk, ada.pk + ben.pk + 1000):
        for now in moments:
            assert prepared(user_id=user_id, now=now) == joined_by(user_id, now).exists(), (user_id, now)
    assert prepared(user_id=ada.pk, now=timezone.now()) and not prepared(user_id=ben.pk, now=timezone.now())


def test_it_is_composed_once(contoso, monkeypatch):
    ada = make_user("ada", contoso)
    compiled = []
    as_sql = SQLCompiler.as_sql
    monkeypatch.setattr(
        SQLCompiler, "as_sql", lambda self, *args, **kwargs: compiled.append(1) or as_sql(self, *args, **kwargs)
    )
    prepared = PreparedExists(joined_by, user_id=int, now=datetime.datetime)
    for _ in range(5):
        assert prepared(user_id=ada.pk, now=timezone.now())
    assert len(compiled) == 1


def test_a_value_the_query_changes_on_its_way_is_refused(contoso):
    prepared = PreparedExists(lambda user_id: User.objects.filter(pk=user_id + 1), user_id=int)
    with pytest.raises(ImproperlyConfigured):
        prepared(user_id=1)
    with pytest.raises(TypeError):
        PreparedExists(joined_by, user_id=int, now=datetime.datetime)(user_id=1)
