"""A company may use Microsoft single sign-on while it holds a valid SSO licence: from its first
moment up to (not including) its end, unless revoked. Granting again extends it, never shortens."""

import datetime

import pytest
from django.utils import timezone

from tenantlink.companies.models import Company, Licence

SSO = Licence.Product.SSO
START = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
END = datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


@pytest.fixture
def fabrikam():
    return Company.objects.create(name="Fabrikam Inc")


def days(number):
    return timezone.now() + datetime.timedelta(days=number)


def test_a_licence_is_valid_from_its_start_up_to_its_end(fabrikam):
    licence = Licence.objects.create(company=fabrikam, product=SSO, valid_from=START, valid_until=END)

    assert not licence.is_valid(START - SECOND)
    assert licence.is_valid(START)
    assert licence.is_valid(END - SECOND)
    assert not licence.is_valid(END)
    assert not licence.is_valid(END + datetime.timedelta(days=365))


def test_a_revoked_licence_is_never_valid(fabrikam):
    licence = Licence.objects.create(company=fabrikam, product=SSO, valid_from=START, valid_until=END, revoked=True)

    assert not licence.is_valid(START)
    assert not licence.is_valid(START + datetime.timedelta(days=100))


def test_without_a_moment_the_licence_is_checked_now(fabrikam):
    running = Licence.objects.create(company=fabrikam, valid_from=days(-1), valid_until=days(1))
    expired = Licence.objects.create(company=fabrikam, valid_from=days(-10), valid_until=days(-1))
    future = Licence.objects.create(company=fabrikam, valid_from=days(1), valid_until=days(10))

    assert running.is_valid() and str(running.status) == "Valid"
    assert not expired.is_valid() and str(expired.status) == "Expired"
    assert not future.is_valid() and str(future.status) == "Not yet valid"


def test_a_company_has_sso_only_while_a_licence_is_valid(fabrikam):
    assert not fabrikam.has_sso()

    Licence.objects.create(company=fabrikam, product=SSO, valid_from=START, valid_until=END)
    assert not fabrikam.has_sso(START - SECOND)
    assert fabrikam.has_sso(START)
    assert fabrikam.has_sso(END - SECOND)
    assert not fabrikam.has_sso(END)
    assert not fabrikam.has_sso()  # that year is long over


def test_an_expired_or_revoked_licence_gives_no_sso(fabrikam):
    Licence.objects.create(company=fabrikam, valid_from=days(-30), valid_until=days(-1))
    Licence.objects.create(company=fabrikam, valid_from=days(-1), valid_until=days(30), revoked=True)

    assert not fabrikam.has_sso()


def test_another_companys_licence_does_not_count(fabrikam, contoso):
    assert contoso.has_sso()
    assert not fabrikam.has_sso()


def test_granting_creates_a_licence_from_now(fabrikam):
    before = timezone.now()
    licence, created = fabrikam.grant_licence(SSO, days(30))

    assert created
    assert before <= licence.valid_from <= timezone.now()
    assert fabrikam.has_sso()
    assert fabrikam.licences.count() == 1


def test_granting_again_extends_the_licence_in_force(fabrikam):
    first, _ = fabrikam.grant_licence(SSO, days(30))
    later = days(90)

    extended, created = fabrikam.grant_licence(SSO, later)

    assert not created and extended.pk == first.pk
    first.refresh_from_db()
    assert first.valid_until == later
    assert fabrikam.licences.count() == 1


def test_granting_a_shorter_licence_never_shortens_the_one_in_force(fabrikam):
    first, _ = fabrikam.grant_licence(SSO, days(90))
    ends = first.valid_until

    kept, created = fabrikam.grant_licence(SSO, days(10))

    assert not created and kept.pk == first.pk
    first.refresh_from_db()
    assert first.valid_until == ends == kept.valid_until


def test_granting_after_expiry_or_revocation_starts_a_new_licence(fabrikam):
    expired = Licence.objects.create(company=fabrikam, valid_from=days(-30), valid_until=days(-1))
    fabrikam.grant_licence(SSO, days(30))
    fabrikam.revoke_licences(SSO)

    renewed, created = fabrikam.grant_licence(SSO, days(60))

    assert created
    assert renewed.pk != expired.pk
    assert fabrikam.licences.count() == 3
    assert fabrikam.has_sso()
    expired.refresh_from_db()
    assert expired.valid_until < timezone.now()  # history is kept as it was


def test_a_licence_must_end_after_it_starts(fabrikam):
    with pytest.raises(ValueError):
        fabrikam.grant_licence(SSO, days(-1))
    with pytest.raises(ValueError):
        fabrikam.grant_licence(SSO, START, valid_from=START)

    assert not fabrikam.licences.exists()


def test_revoking_ends_sso_and_records_when(fabrikam):
    fabrikam.grant_licence(SSO, days(30))
    Licence.objects.create(company=fabrikam, valid_from=days(-30), valid_until=days(-1))

    assert fabrikam.revoke_licences(SSO) == 2

    assert not fabrikam.has_sso()
    for licence in fabrikam.licences.all():
        assert licence.revoked and licence.revoked_at is not None
        assert str(licence.status) == "Revoked"
    assert fabrikam.revoke_licences(SSO) == 0


def test_revoking_leaves_other_companies_alone(fabrikam, contoso):
    fabrikam.grant_licence(SSO, days(30))

    fabrikam.revoke_licences(SSO)

    assert contoso.has_sso()


def test_setting_the_revoked_flag_records_when(fabrikam):
    licence = Licence.objects.create(company=fabrikam, product=SSO, valid_from=START, valid_until=END)
    assert licence.revoked_at is None
    licence.revoked = True
    licence.save(update_fields=["revoked"])
    licence.refresh_from_db()
    assert licence.revoked_at is not None
