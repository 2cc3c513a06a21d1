"""The adoption picture in Swedish and Finnish: the text follows the language, but the numbers
the browser draws with (SVG coordinates, the bar widths) are always written with a decimal point.
With a decimal comma ("343,27") Chromium draws no bars at all."""

import re

import pytest

from tenantlink.conftest import make_user, sign_in
from tenantlink.sso.models import Integration
from tenantlink.sso.tests.conftest import CONTOSO
from tenantlink.sso.tests.test_adoption import at, connect, signed_in

DRAWN_WITH = ("viewBox", "x", "y", "x1", "x2", "y1", "y2", "width", "height")
NUMBERS = re.compile(r"^[\d.]+( [\d.]+)*$")


def drawing_numbers(page):
    """Every value of a coordinate or size attribute in the chart and the adoption bars."""
    svg = "".join(re.findall(r'<svg class="(?:chart|adoption-bar)".*?</svg>', page, re.DOTALL))
    return re.findall(rf'\s(?:{"|".join(DRAWN_WITH)})="([^"]*)"', svg)


def assert_drawable(page):
    numbers = drawing_numbers(page)
    assert numbers, "no SVG on the page"
    assert all(NUMBERS.match(value) for value in numbers), [value for value in numbers if not NUMBERS.match(value)]
    assert any("." in value for value in numbers)  # fractions are there, and written with a point


@pytest.mark.parametrize("language", ["sv", "fi"])
def test_the_single_sign_on_page_draws_its_chart_in_every_language(client, admin, member, contoso, language):
    admin.language = language
    admin.save(update_fields=["language"])
    connect(member, Integration.objects.create(company=contoso, tenant_id=CONTOSO, display_name="Contoso"))
    make_user("carl", contoso)
    for days_ago, count in ((1, 3), (4, 1), (9, 5)):
        signed_in(member, at(days_ago), "microsoft", count=count)
        signed_in(member, at(days_ago, 9), "totp", count=count + 1)
    sign_in(client, admin)

    page = client.get("/company/sso/").content.decode()

    assert f'<html lang="{language}"' in page
    assert_drawable(page)
    assert '<rect class="fill" width="33" height="10"/>' in page  # 1 of 3 active users


@pytest.mark.parametrize("language", ["sv", "fi"])
def test_the_operators_adoption_page_draws_its_chart_in_every_language(client, member, contoso, language):
    oscar = make_user("oscar", None, is_staff=True, is_superuser=True, language=language)
    Integration.objects.create(company=contoso, tenant_id=CONTOSO, display_name="Contoso")
    signed_in(member, at(3), "totp", count=7)
    signed_in(member, at(2), "microsoft", count=2)
    sign_in(client, oscar)

    page = client.get("/staff/sso/integration/adoption/").content.decode()

    assert f'lang="{language}"' in page
    assert_drawable(page)
