"""Oscar, operator staff who reads the admin in Swedish, sees the licences' and companies' labels
and columns in Swedish too."""

import re

import pytest

from tenantlink.conftest import make_user, sign_in


@pytest.fixture
def swedish_staff_client(client):
    sign_in(client, make_user("oscar", None, is_staff=True, is_superuser=True, language="sv"))
    return client


def column_headings(page):
    return re.findall(r'<th scope="col"[^>]*>\s*<div class="text">(?:<a [^>]*>|<span>)([^<]+)<', page)


def test_the_licence_list_and_form_name_the_company_in_swedish(swedish_staff_client, contoso):
    listing = swedish_staff_client.get("/staff/companies/licence/").content.decode()
    form = swedish_staff_client.get("/staff/companies/licence/add/").content.decode()

    assert column_headings(listing)[0] == "Företag"
    assert '<label class="required" for="id_company">Företag:</label>' in form
    assert "Company" not in column_headings(listing)


def test_the_company_list_says_when_each_was_created_in_swedish(swedish_staff_client, contoso):
    listing = swedish_staff_client.get("/staff/companies/company/").content.decode()

    assert column_headings(listing)[-1] == "Skapad"
