"""Require Microsoft sign-in, per company, against the real processes (the portal under gunicorn on
PostgreSQL, the Entra emulator as Microsoft): Ada turns it on after the dry run; Ben, connected,
is not signed in by his password and code and is sent to Microsoft; Ben, not connected, must
connect before anything else and cannot get round it; Ada stays exempt; the requirement pauses
when the licence ends and comes back with the renewal; the operator turns it off.

The browsers are scripted over HTTP (tests/e2e/microsoft_steps.py); the same story clicked through
in Chromium is in test_browser_require_microsoft.py.
"""

import re

import httpx
import pytest

from tests.e2e.conftest import demo_people
from tests.e2e.microsoft_steps import (
    BEN_AT_MICROSOFT,
    CONNECT_BEN,
    CONNECTED,
    STAGE,
    Authenticator,
    Visitor,
    connections,
    last_event,
    messages_on,
)

pytestmark = pytest.mark.e2e

REQUIRE = (
    "from tenantlink.companies.models import Company\nCompany.objects.get(name='Contoso Ltd').require_microsoft()\n"
)
REFUSED = "Contoso Ltd requires its members to sign in with their Microsoft work account"
EVENT_COUNT = (
    "from tenantlink.audit.models import AuditEvent\nprint(AuditEvent.objects.filter(action='{action}').count())\n"
)


@pytest.fixture
def people(console, emulator_control):
    """The demo people, Contoso Ltd's integration of the Contoso tenant active, nobody connected,
    nothing required yet; Microsoft (the emulator) at its start."""
    console.run(STAGE)
    return demo_people()


@pytest.fixture
def required(people, console):
    """Contoso Ltd requires Microsoft sign-in, as Ada turned it on."""
    console.run(REQUIRE)
    return people


@pytest.fixture
def authenticator():
    return Authenticator()


@pytest.fixture
def visitor(portal):
    visitor = Visitor(portal)
    yield visitor
    visitor.close()


def password_and_code(visitor, person, authenticator):
    """Username, password and code, as a person types them; the page shown afterwards."""
    visitor.post("/signin/", username=person.username, password=person.password)
    return visitor.post("/signin/verify/", code=authenticator.code(person))


def errors_on(page):
    return re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page.text, re.DOTALL)


def count(console, action):
    return int(console.run(EVENT_COUNT.format(action=action)))


def expect_refused(page):
    """Not signed in: the page explains and offers the Microsoft button."""
    assert page.url.path == "/sso/required/", page.url
    assert REFUSED in page.text and 'id="microsoft-signin"' in page.text


def expect_mandatory_offer(page):
    assert page.url.path == "/sso/offer/", page.url
    assert REFUSED in page.text
    assert "Not now" not in page.text and "ask again" not in page.text


def test_an_administrator_reviews_the_dry_run_and_requires_microsoft_sign_in(visitor, people, console, authenticator):
    console.run(CONNECT_BEN)
    password_and_code(visitor, people["ada"], authenticator)

    review = visitor.get("/company/sso/require/")
    connected = review.text.split('id="connected"')[1].split("</section>")[0]
    waiting = review.text.split('id="not-connected"')[1].split("</section>")[0]
    exempt = review.text.split('id="exempt"')[1].split("</section>")[0]
    assert "1 member is connected" in connected and "Ben Berg" in connected
    assert "1 member is not connected yet" in waiting and "Cleo Carter" in waiting
    assert "Ada" in exempt
    assert count(console, "sso.required.on") == 0  # looking changes nothing

    page = visitor.post("/company/sso/require/")

    assert "Members must now sign in with Microsoft. Administrators are exempt." in messages_on(page)
    assert "Stop requiring Microsoft sign-in" in page.text
    event = last_event(console, "sso.required.on")
    assert event["details"] == {"connected": 1, "not_connected": 1}


def test_a_connected_member_is_not_signed_in_by_password_and_code(visitor, required, console, authenticator):
    console.run(CONNECT_BEN)

    page = password_and_code(visitor, required["ben"], authenticator)

    expect_refused(page)
    assert not visitor.is_signed_in()
    assert last_event(console, "signin.failed")["details"] == {"method": "password", "reason": "microsoft_required"}
    assert last_event(console, "signin.succeeded") is None  # the audit log does not say he signed in
    # The button on that page: Microsoft signs him in.
    callback = visitor.at_microsoft(visitor.post("/sso/signin/", hold_callback=True), BEN_AT_MICROSOFT)
    assert visitor.get(callback).url.path == "/portal/"
    assert visitor.is_signed_in()


def test_a_member_without_a_connection_reaches_the_portal_only_by_connecting(visitor, required, console, authenticator):
    expect_mandatory_offer(password_and_code(visitor, required["ben"], authenticator))

    # Typed addresses, the back button, "Don't ask again", Sign in with Microsoft: all lead back.
    for path in ("/portal/", "/profile/settings/", "/company/users/", "/signin/"):
        expect_mandatory_offer(visitor.get(path))
    expect_mandatory_offer(visitor.post("/sso/offer/decline/", next="/portal/"))
    expect_mandatory_offer(visitor.post("/profile/microsoft/disconnect/"))

    # Cancelled at Microsoft: back at the offer, free to try again.
    held = httpx.URL(visitor.connect(BEN_AT_MICROSOFT, hold=True))
    page = visitor.get(f"/sso/callback/?error=access_denied&error_subcode=cancel&state={held.params['state']}")
    expect_mandatory_offer(page)
    assert any(m.startswith("Signing in at Microsoft was cancelled. Nothing was changed.") for m in messages_on(page))
    # The same answer again (from the history): refused, still at the offer.
    expect_mandatory_offer(visitor.get(str(held)))
    assert connections(console) == []

    page = visitor.connect(BEN_AT_MICROSOFT)

    assert page.url.path == "/portal/"
    assert f"{CONNECTED} Ben Berg ({BEN_AT_MICROSOFT.upn})." in messages_on(page)
    assert visitor.get("/profile/settings/").url.path == "/profile/settings/"


def test_a_member_may_sign_out_instead(visitor, required, authenticator):
    expect_mandatory_offer(password_and_code(visitor, required["ben"], authenticator))
    assert visitor.sign_out().url.path == "/signin/"
    assert not visitor.is_signed_in()


def test_administrators_are_exempt(visitor, required, console, authenticator):
    page = password_and_code(visitor, required["ada"], authenticator)
    assert page.url.path == "/sso/offer/" and "Not now" in page.text  # the ordinary offer
    assert visitor.is_signed_in()
    assert "Administrators are exempt" in visitor.get("/company/sso/").text


def test_wrong_password_and_unknown_account_get_the_same_answer(visitor, required, console):
    console.run(CONNECT_BEN)
    wrong = visitor.post("/signin/", username="ben", password="not Ben's password at all")
    unknown = visitor.post("/signin/", username="nobody-at-all", password="not Ben's password at all")
    assert wrong.status_code == unknown.status_code == 200
    assert messages_on(wrong) == messages_on(unknown)
    assert errors_on(wrong) == errors_on(unknown) != []
    assert "Microsoft" not in " ".join(messages_on(wrong))


def test_the_requirement_pauses_when_the_licence_ends_and_returns_with_the_renewal(
    portal, visitor, required, console, authenticator
):
    console.run(CONNECT_BEN)
    portal.manage("licence", "revoke", "Contoso Ltd")

    # Nobody signed in meanwhile: the daily purge notices the pause, once.
    assert "paused or resumed for 1 companies" in portal.manage("purge_expired")
    portal.manage("purge_expired")
    assert last_event(console, "sso.required.paused")["details"] == {"reason": "licence"}
    assert count(console, "sso.required.paused") == 1

    assert password_and_code(visitor, required["ben"], authenticator).url.path == "/portal/"  # nobody locked out
    visitor.sign_out()
    assert "paused" in portal.manage("require_microsoft_signin", "Contoso Ltd")

    portal.manage("licence", "grant", "Contoso Ltd", "--days", "30")

    expect_refused(password_and_code(visitor, required["ben"], authenticator))
    assert count(console, "sso.required.resumed") == 1
    assert count(console, "sso.required.paused") == 1


def test_the_requirement_pauses_when_no_integration_is_active(visitor, portal, required, console, authenticator):
    ada = Visitor(portal)
    try:
        password_and_code(ada, required["ada"], authenticator)  # exempt: she can always fix the set-up
        integration = console.run(
            "from tenantlink.sso.models import Integration\nprint(Integration.objects.get(display_name='Contoso').pk)"
        ).strip()
        page = ada.post(f"/company/sso/{integration}/disable/")
    finally:
        ada.close()

    assert "No integration is active, so the requirement is paused" in page.text
    assert last_event(console, "sso.required.paused")["details"] == {"reason": "integration"}
    assert password_and_code(visitor, required["ben"], authenticator).url.path == "/portal/"  # nobody locked out
    assert count(console, "sso.required.paused") == 1


def test_the_operator_turns_it_off_with_the_command(portal, visitor, required, console, authenticator):
    console.run(CONNECT_BEN)

    assert portal.manage("require_microsoft_signin", "Contoso Ltd", "--off") == (
        "Contoso Ltd no longer requires Microsoft sign-in.\n"
    )

    assert password_and_code(visitor, required["ben"], authenticator).url.path == "/portal/"
    assert last_event(console, "sso.required.off")["details"] == {}
