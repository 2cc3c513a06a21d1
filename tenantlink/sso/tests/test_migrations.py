"""Migrations that change data, run from the state before them with data that needs changing."""

import datetime
import uuid

import pytest

BEFORE, AFTER = ("sso", "0004_integration_leaver_lease_owner"), ("sso", "0005_integration_tenant_works_once")


@pytest.fixture
def executor(from_state):
    return from_state(BEFORE)


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


def test_integrations_that_work_need_no_sign_in_at_their_tenant_and_others_do(from_state):
    before, after = (
        ("sso", "0008_integration_tenant_signed_in_at"),
        ("sso", "0009_working_integrations_count_as_signed_in"),
    )
    executor = from_state(before)
    apps = executor.loader.project_state([before]).apps
    Company, Integration = apps.get_model("companies", "Company"), apps.get_model("sso", "Integration")
    company = Company.objects.create(name="Contoso")
    verified = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)

    def integration(name, status, **fields):
        return Integration.objects.create(
            company=company, tenant_id=uuid.uuid4(), display_name=name, status=status, **fields
        ).pk

    active = integration("Active", "active", last_verified_at=verified)
    disabled = integration("Disabled, never verified (an operator's)", "disabled")
    failed = integration("Worked once, failed since", "failed", last_verified_at=verified)
    taken = integration("Lost to another company", "failed", last_verified_at=verified, failure_reason="tenant_taken")
    pending = integration("Never worked", "pending")

    executor.loader.build_graph()
    executor.migrate([after])

    Integration = executor.loader.project_state([after]).apps.get_model("sso", "Integration")
    signed_in = dict(Integration.objects.values_list("pk", "tenant_signed_in_at"))
    assert signed_in[active] == verified and signed_in[disabled] is not None
    assert [signed_in[pk] for pk in (failed, taken, pending)] == [None, None, None]
