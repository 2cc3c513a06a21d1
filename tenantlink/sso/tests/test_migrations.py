"""Migrations that change data, run from the state before them with data that needs changing."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("sso", "0004_integration_leaver_lease_owner"), ("sso", "0005_integration_tenant_works_once")


@pytest.fixture
def executor(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    executor.loader.build_graph()
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_tenant_working_for_two_companies_stays_with_the_first(executor):
    apps = executor.loader.project_state([BEFORE]).apps
    Company, User = apps.get_model("companies", "Company"), apps.get_model("accounts", "User")
    Integration, Connection = apps.get_model("sso", "Integration"), apps.get_model("sso", "Connection")
    contoso, northwind = Company.objects.create(name="Contoso"), Company.objects.create(name="Northwind")
    tenant = uuid.uuid4()
    first = Integration.objects.create(company=contoso, tenant_id=tenant, display_name="Contoso", status="active")
    second = Integration.objects.create(company=northwind, tenant_id=tenant, display_name="Not ours", status="disabled")
    ben = User.objects.create(username="ben", company=contoso)
    moved = User.objects.create(username="bob", company=northwind)  # moved from Contoso by an operator
    for user in (ben, moved):
        Connection.objects.create(user=user, integration=first, tid=tenant, oid=uuid.uuid4())

    executor.loader.build_graph()
    executor.migrate([AFTER])

    statuses = dict(Integration.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "active", second.pk: "failed"}
    assert Integration.objects.get(pk=second.pk).failure_reason == "tenant_taken"
    assert list(Connection.objects.values_list("user__username", flat=True)) == ["ben"]
