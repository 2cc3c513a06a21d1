"""Flows 3–6 against the real processes: the portal under gunicorn on PostgreSQL and the Entra
emulator standing in for Microsoft. People connect their Microsoft account, sign in with it and
lose it again; Microsoft's answers are broken on purpose (every ID-token fault the emulator has,
replayed and foreign callbacks, a token endpoint that fails or hangs) and the portal must refuse
with an explanation, sign nobody in and connect nobody.

The browsers here are scripted over HTTP (tests/e2e/microsoft_steps.py), so that Microsoft's
answer can be held and sent twice, from another browser, or from two browsers at once; the same
stories clicked through in Chromium are in test_browser_microsoft_signin.py.
"""

import time

import httpx
import pytest

from tests.e2e.conftest import demo_people
from tests.e2e.microsoft_steps import (
    BAD_TOKEN,
    BEN_AT_MICROSOFT,
    CONNECT_BEN,
    CONNECTED,
    CONTOSO,
    FABRIKAM,
    FIONA_AT_MICROSOFT,
    FRANK_AT_MICROSOFT,
    NEW_KEY,
    NOT_CONNECTED,
    NOT_FROM_THIS_BROWSER,
    NOT_OUR_ORGANIZATION,
    SESSION_ENDED,
    STAGE,
    TAKEN,
    UNAVAILABLE,
    UNKNOWN_ORGANIZATION,
    Authenticator,
    Mailbox,
    MicrosoftAccount,
    admin_consent_at_microsoft,
    at_once,
    connections,
    last_event,
    messages_on,
)

pytestmark = pytest.mark.e2e

BEN_CONNECTION = [["ben", CONTOSO, BEN_AT_MICROSOFT.oid]]


@pytest.fixture
def integration(console, emulator_control):
    """The stage of every story: the demo people, Contoso Ltd's integration of the Contoso tenant
    active, nobody connected; Microsoft (the emulator) at its start. The integration's id."""
    return int(console.run(STAGE))


@pytest.fixture
def people(integration):
    return demo_people()


@pytest.fixture
def ben_connected(integration, console):
    console.run(CONNECT_BEN)


@pytest.fixture
def authenticator():
    return Authenticator()


def expect_refused_at_signin(page, *words):
    """Back on the sign-in page, with the explanation."""
    assert page.url.path == "/signin/", page.url
    text = " ".join(messages_on(page))
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert "Sign in with Microsoft" in page.text  # and the way to try again
    assert 'name="username"' in page.text  # ... or to use the password


# --- The relying party's checks: every broken ID token is refused ---------------------------------

# Each fault of the emulator, and the check of the portal that must catch it (as the audit log
# records it): refused for the right reason, not by accident.
BROKEN_TOKENS = {
    "wrong_iss": "iss",
    "wrong_aud": "InvalidAudienceError",
    "missing_aud": "MissingRequiredClaimError",
    "missing_sub": "MissingRequiredClaimError",
    "missing_iat": "MissingRequiredClaimError",
    "expired": "ExpiredSignatureError",
    "future_nbf": "ImmatureSignatureError",
    "wrong_nonce": "nonce",
    "bad_signature": "InvalidSignatureError",
    "alg_none": "alg none",
    "hs256_client_secret": "alg HS256",
    "tid_mismatch": "iss",
    "unknown_kid": "unknown kid",
}
# Why each is refused, and what the person reads: a key not fetched yet may be one Microsoft rolled
# in a moment ago, so that one says to try again later.
REFUSED_AS = {fault: ("bad_token", BAD_TOKEN) for fault in BROKEN_TOKENS} | {"unknown_kid": ("new_key", NEW_KEY)}


@pytest.mark.parametrize("fault", BROKEN_TOKENS)
def test_a_broken_id_token_signs_nobody_in(fault, new_visitor, emulator_control, console, ben_connected):
    ben = new_visitor()
    emulator_control.post("/faults", json={"fault": fault, "times": 1}).raise_for_status()

    page = ben.microsoft_signin(BEN_AT_MICROSOFT)

    reason, message = REFUSED_AS[fault]
    expect_refused_at_signin(page, message)
    assert not ben.is_signed_in()
    assert connections(console) == BEN_CONNECTION
    failed = last_event(console, "signin.failed")
    assert failed["outcome"] == "denied"
    assert (failed["details"]["reason"], failed["details"]["code"]) == (reason, BROKEN_TOKENS[fault])
    # The fault was used up by this sign-in: the next one, unbroken, works.
    assert emulator_control.get("/faults").json() == {"faults": []}
    assert ben.microsoft_signin(BEN_AT_MICROSOFT).url.path == "/portal/"


@pytest.mark.parametrize("fault", ["wrong_aud", "wrong_nonce", "alg_none", "tid_mismatch", "unknown_kid"])
def test_a_broken_id_token_connects_nobody(fault, new_visitor, emulator_control, console, people, authenticator):
    ben = new_visitor()
    ben.sign_in_with_password(people["ben"], authenticator)
    emulator_control.post("/faults", json={"fault": fault, "times": 1}).raise_for_status()

    page = ben.connect(BEN_AT_MICROSOFT)

    reason, message = REFUSED_AS[fault]
    assert page.url.path == "/portal/"
    assert message in messages_on(page)
    assert connections(console) == []
    failed = last_event(console, "sso.connect_failed")
    assert (failed["details"]["reason"], failed["details"]["code"]) == (reason, BROKEN_TOKENS[fault])
    assert ben.is_signed_in()  # the password session goes on


def test_a_token_signed_with_a_key_microsoft_just_rolled_in_is_accepted_after_one_key_refetch(
    new_visitor, emulator_control, console, portal, ben_connected
):
    """Microsoft rolls its signing keys without notice. The portal keeps the keys in the database
    (table sso_cacheddocument) and fetches them again at once on an unknown `kid` — but only when
    its copy is older than 5 minutes, as Microsoft advises, so that it is not asked at every
    sign-in. The test makes the copy 6 minutes old rather than waiting."""
    ben = new_visitor()
    assert ben.microsoft_signin(BEN_AT_MICROSOFT).url.path == "/portal/"  # the keys are fetched and kept
    ben.sign_out()
    console.run(
        "import datetime\n"
        "from django.utils import timezone\n"
        "from tenantlink.sso.models import CachedDocument\n"
        "CachedDocument.objects.update(fetched_at=timezone.now() - datetime.timedelta(minutes=6))\n"
    )
    fetched_before = key_fetches(portal)
    emulator_control.post("/faults", json={"fault": "rotated_kid", "times": 1}).raise_for_status()

    page = ben.microsoft_signin(BEN_AT_MICROSOFT)

    assert page.url.path == "/portal/", messages_on(page)
    assert "Welcome, Ben Berg" in page.text
    assert key_fetches(portal) == fetched_before + 1


def key_fetches(portal):
    """How often the portal has fetched Microsoft's keys (it logs every call to Microsoft)."""
    return portal.log_path.read_text(errors="replace").count("/discovery/v2.0/keys took")


def test_microsofts_answer_replayed_signs_nobody_in(new_visitor, console, ben_connected):
    ben = new_visitor()
    answer = ben.microsoft_signin(BEN_AT_MICROSOFT, hold=True)
    assert ben.get(answer).url.path == "/portal/"
    ben.sign_out()

    page = ben.get(answer)  # the same code and state, from the browser history

    expect_refused_at_signin(page, NOT_FROM_THIS_BROWSER)
    assert not ben.is_signed_in()
    assert last_event(console, "signin.failed")["details"]["reason"] == "state"


def test_microsofts_answer_in_another_browser_signs_nobody_in(new_visitor, ben_connected):
    ben, stranger = new_visitor(), new_visitor()
    answer = ben.microsoft_signin(BEN_AT_MICROSOFT, hold=True)
    # The stranger's browser has a sign-in of its own waiting for Microsoft.
    stranger.microsoft_signin(BEN_AT_MICROSOFT, hold=True)

    page = stranger.get(answer)

    expect_refused_at_signin(page, NOT_FROM_THIS_BROWSER)
    assert not stranger.is_signed_in()
    # The try did not use Ben's answer up: in his own browser it still works.
    assert ben.get(answer).url.path == "/portal/"


def test_a_code_from_another_sign_in_is_useless_without_its_pkce_verifier(new_visitor, console, ben_connected):
    """A code stolen from Ben's way back, put into a sign-in of the thief's own (with a state
    that is valid in the thief's browser): Microsoft redeems a code only with the verifier of
    the sign-in it was issued to, which only Ben's sign-in has."""
    ben, thief = new_visitor(), new_visitor()
    bens_answer = httpx.URL(ben.microsoft_signin(BEN_AT_MICROSOFT, hold=True))
    thiefs_answer = httpx.URL(thief.microsoft_signin(BEN_AT_MICROSOFT, hold=True))

    page = thief.get(str(thiefs_answer.copy_set_param("code", bens_answer.params["code"])))

    expect_refused_at_signin(page, "Microsoft did not sign you in. Nothing was changed.", "AADSTS501481")
    assert not thief.is_signed_in()
    assert last_event(console, "signin.failed")["details"]["code"] == "AADSTS501481"


def test_a_connect_answer_taken_to_another_signed_in_browser_connects_nobody(
    new_visitor, console, people, authenticator
):
    """Someone who gets a colleague's browser to deliver the answer of their own connect would
    have their Microsoft account connected to the colleague's portal account."""
    ben, ada = new_visitor(), new_visitor()
    ben.sign_in_with_password(people["ben"], authenticator)
    ada.sign_in_with_password(people["ada"], authenticator)
    answer = ben.connect(BEN_AT_MICROSOFT, hold=True)

    page = ada.get(answer)

    assert NOT_FROM_THIS_BROWSER in " ".join(messages_on(page))
    assert connections(console) == []
    assert ada.is_signed_in()


# --- Identities are (tid, oid), and only of the company's own tenants --------------------------------


def test_a_user_of_another_tenant_cannot_connect(new_visitor, emulator, portal, console, people, authenticator):
    admin_consent_at_microsoft(emulator, portal, FABRIKAM, FRANK_AT_MICROSOFT)  # Fiona may sign in to the app
    ben = new_visitor()
    ben.sign_in_with_password(people["ben"], authenticator)

    # Contoso Ltd has one integration, so Microsoft is asked for an account of Contoso only, and
    # Microsoft itself refuses Fabrikam's Fiona there.
    page = ben.connect(FIONA_AT_MICROSOFT)
    assert f"{NOT_OUR_ORGANIZATION} (Error code: AADSTS50020)" in messages_on(page)

    # With a second integration Microsoft is asked for any work account and lets Fiona through:
    # the portal itself refuses a tenant the company has not connected.
    console.run(
        "from tenantlink.companies.models import Company\n"
        "from tenantlink.sso.models import Integration\n"
        "Integration.objects.create(company=Company.objects.get(name='Contoso Ltd'), display_name='Contoso Labs',\n"
        "    tenant_id='0b7c2f3e-5a61-4d28-9e0a-6f4b1c8d2e75', status='active')\n"
    )
    page = ben.connect(FIONA_AT_MICROSOFT)
    assert NOT_OUR_ORGANIZATION in messages_on(page)

    assert connections(console) == []
    failed = last_event(console, "sso.connect_failed")
    assert (failed["details"]["reason"], failed["details"]["code"]) == ("tenant_not_integrated", FABRIKAM)


def test_a_user_of_another_tenant_cannot_sign_in(new_visitor, emulator, portal, console, ben_connected):
    admin_consent_at_microsoft(emulator, portal, FABRIKAM, FRANK_AT_MICROSOFT)
    fiona = new_visitor()

    page = fiona.microsoft_signin(FIONA_AT_MICROSOFT)

    expect_refused_at_signin(page, UNKNOWN_ORGANIZATION)
    assert not fiona.is_signed_in()
    failed = last_event(console, "signin.failed")
    assert failed["details"]["tid"] == FABRIKAM and failed["details"]["reason"] == "unknown_tenant"


def test_a_microsoft_account_with_a_users_email_address_signs_in_as_nobody(
    new_visitor, emulator_control, console, ben_connected
):
    """nOAuth: whoever runs a tenant sets its users' addresses. An account of Contoso's own tenant
    with Ben's portal address as its mail and as its username is still not Ben."""
    lookalike = MicrosoftAccount("ben@contoso.example", "7d1e5c0a-93b4-4f6e-8a2d-c4b9e1f07a36", CONTOSO, "Ben Berg")
    emulator_control.post(
        f"/tenants/{CONTOSO}/users",
        json={
            "oid": lookalike.oid,
            "upn": lookalike.upn,
            "display_name": lookalike.name,
            "mail": "ben@contoso.example",
            "password": "Entra-demo-1",
        },
    ).raise_for_status()
    visitor = new_visitor()

    page = visitor.microsoft_signin(lookalike)

    expect_refused_at_signin(page, NOT_CONNECTED)
    assert not visitor.is_signed_in()
    assert connections(console) == BEN_CONNECTION
    failed = last_event(console, "signin.failed")
    assert failed["details"]["reason"] == "not_connected"
    assert failed["details"]["oid"] == lookalike.oid and failed["target"] == "ben@contoso.example"


# --- Sessions opened with Microsoft last only as long as the connection -------------------------------


@pytest.fixture
def ben_twice(new_visitor, people, authenticator, ben_connected):
    """Ben signed in twice: with Microsoft in one browser, with password and code in another."""
    with_microsoft, with_password = new_visitor(), new_visitor()
    assert with_microsoft.microsoft_signin(BEN_AT_MICROSOFT).url.path == "/portal/"
    with_password.sign_in_with_password(people["ben"], authenticator)
    return with_microsoft, with_password


@pytest.fixture
def ada(new_visitor, people, authenticator):
    """Ada, Contoso Ltd's administrator, signed in."""
    ada = new_visitor()
    ada.sign_in_with_password(people["ada"], authenticator)
    return ada


def ben_id(console):
    return int(console.run("from tenantlink.accounts.models import User\nprint(User.objects.get(username='ben').pk)"))


def expect_microsoft_session_ended(visitor):
    page = visitor.get("/portal/")
    assert page.url.path == "/signin/" and page.url.query == b"next=/portal/", page.url
    assert any(SESSION_ENDED in message for message in messages_on(page)), messages_on(page)
    assert not visitor.is_signed_in()


def test_removing_the_connection_in_my_profile_ends_the_microsoft_session(ben_twice, console, portal):
    with_microsoft, with_password = ben_twice
    mailbox = Mailbox(portal)

    assert "Deactivate single sign-on?" in with_password.get("/profile/microsoft/disconnect/").text
    page = with_password.post("/profile/microsoft/disconnect/")

    assert page.url.path == "/profile/settings/"
    assert "Microsoft sign-in is off. You sign in with your password and second factor." in messages_on(page)
    assert connections(console) == []
    expect_microsoft_session_ended(with_microsoft)
    assert with_password.is_signed_in()
    [mail] = mailbox.new_messages("ben@contoso.example")
    assert "Subject: Microsoft sign-in was removed from your Tenantlink account" in mail
    assert f"the Microsoft account {BEN_AT_MICROSOFT.name} ({BEN_AT_MICROSOFT.upn}) was disconnected" in mail
    assert "administrator" not in mail.split("If this was not you")[0]


def test_an_administrator_removing_the_connection_ends_the_microsoft_session(ben_twice, ada, console, portal):
    with_microsoft, with_password = ben_twice
    mailbox = Mailbox(portal)

    user_page = ada.get(f"/company/users/{ben_id(console)}/")
    assert BEN_AT_MICROSOFT.upn in user_page.text
    page = ada.post(f"/company/users/{ben_id(console)}/microsoft/disconnect/")

    assert "Ben Berg's Microsoft connection is removed; they sign in with password and second factor." in (
        messages_on(page)
    )
    assert connections(console) == []
    expect_microsoft_session_ended(with_microsoft)
    assert with_password.is_signed_in()
    [mail] = mailbox.new_messages("ben@contoso.example")
    assert "was disconnected" in mail and "This was done by your company's administrator." in mail


def test_deactivating_the_user_ends_every_session(ben_twice, ada, console):
    with_microsoft, with_password = ben_twice

    ada.post(f"/company/users/{ben_id(console)}/deactivate/")

    assert not with_microsoft.is_signed_in()
    assert not with_password.is_signed_in()
    expect_refused_at_signin(with_microsoft.microsoft_signin(BEN_AT_MICROSOFT), "Your portal account is deactivated.")


def test_disabling_the_integration_ends_the_microsoft_session_and_enabling_it_restores_sign_in(
    ben_twice, ada, integration, console
):
    with_microsoft, with_password = ben_twice

    page = ada.post(f"/company/sso/{integration}/disable/")
    assert "Contoso is disabled" in " ".join(messages_on(page))

    expect_microsoft_session_ended(with_microsoft)
    assert with_password.is_signed_in()
    expect_refused_at_signin(
        with_microsoft.microsoft_signin(BEN_AT_MICROSOFT), "Microsoft sign-in is switched off for your organization."
    )
    assert connections(console) == BEN_CONNECTION  # kept

    ada.post(f"/company/sso/{integration}/enable/")
    assert with_microsoft.microsoft_signin(BEN_AT_MICROSOFT).url.path == "/portal/"


def test_deleting_the_integration_ends_the_microsoft_session(ben_twice, ada, integration, console):
    with_microsoft, with_password = ben_twice

    assert "1 user's Microsoft connection is removed." in ada.get(f"/company/sso/{integration}/delete/").text
    page = ada.post(f"/company/sso/{integration}/delete/")
    assert "Contoso is deleted; 1 Microsoft connection was removed." in messages_on(page)

    expect_microsoft_session_ended(with_microsoft)
    assert with_password.is_signed_in()
    assert connections(console) == []
    expect_refused_at_signin(with_microsoft.microsoft_signin(BEN_AT_MICROSOFT), UNKNOWN_ORGANIZATION)


def test_a_revoked_licence_ends_the_microsoft_session_and_a_renewal_restores_sign_in(ben_twice, portal, console):
    with_microsoft, with_password = ben_twice

    portal.manage("licence", "revoke", "Contoso Ltd")

    expect_microsoft_session_ended(with_microsoft)
    assert with_password.is_signed_in()
    expect_refused_at_signin(
        with_microsoft.microsoft_signin(BEN_AT_MICROSOFT), "Your company's single sign-on licence is not valid"
    )
    assert connections(console) == BEN_CONNECTION  # nothing deleted

    portal.manage("licence", "grant", "Contoso Ltd", "--days", "30")
    assert with_microsoft.microsoft_signin(BEN_AT_MICROSOFT).url.path == "/portal/"


# --- Connecting, and Microsoft failing meanwhile ------------------------------------------------------


def test_connecting_stores_the_identity_and_tells_the_user_by_email(
    new_visitor, console, portal, people, authenticator
):
    ben = new_visitor()
    mailbox = Mailbox(portal)
    offer = ben.sign_in_with_password(people["ben"], authenticator)
    assert offer.url.path == "/sso/offer/" and "Sign in with Microsoft?" in offer.text

    page = ben.connect(BEN_AT_MICROSOFT)

    assert page.url.path == "/portal/"
    assert f"{CONNECTED} Ben Berg ({BEN_AT_MICROSOFT.upn})." in messages_on(page)
    assert connections(console) == BEN_CONNECTION
    [mail] = mailbox.new_messages("ben@contoso.example")
    assert "Subject: A Microsoft account was connected to your Tenantlink account" in mail
    assert (
        f"the Microsoft account {BEN_AT_MICROSOFT.name} ({BEN_AT_MICROSOFT.upn}) was connected to your Tenantlink"
        in mail
    )


def test_after_connecting_the_sign_in_page_shows_microsoft_first(new_visitor, people, authenticator):
    """Someone who has just turned Microsoft sign-in on looks for it at their next sign-in."""
    ben = new_visitor()
    ben.sign_in_with_password(people["ben"], authenticator)
    assert ben.connect(BEN_AT_MICROSOFT).url.path == "/portal/"
    ben.sign_out()

    page = ben.get("/signin/")

    microsoft_button, password_form = page.text.index('id="microsoft-signin"'), page.text.index('name="username"')
    assert microsoft_button < password_form, "the password form comes first, as if Microsoft sign-in were not on"


def test_two_people_connecting_the_same_microsoft_account_at_once_end_with_one_connection(
    new_visitor, console, people, authenticator
):
    ben, ada = new_visitor(), new_visitor()
    ben.sign_in_with_password(people["ben"], authenticator)
    ada.sign_in_with_password(people["ada"], authenticator)
    # Both at Microsoft as Ben's account; both answers held, then delivered at the same moment.
    answers = [ben.connect(BEN_AT_MICROSOFT, hold=True), ada.connect(BEN_AT_MICROSOFT, hold=True)]

    pages = at_once(lambda: ben.get(answers[0]), lambda: ada.get(answers[1]))

    told = sorted(" ".join(messages_on(page)) for page in pages)
    assert told[0].startswith(f"{CONNECTED} Ben Berg ({BEN_AT_MICROSOFT.upn})."), told
    assert told[1].startswith(TAKEN), told
    [[username, tid, oid]] = connections(console)
    assert (tid, oid) == (CONTOSO, BEN_AT_MICROSOFT.oid) and username in ("ben", "ada")
    assert ben.is_signed_in() and ada.is_signed_in()


def test_microsofts_token_endpoint_failing_is_explained_and_password_sign_in_goes_on(
    new_visitor, emulator_control, people, authenticator, ben_connected
):
    ben = new_visitor()
    emulator_control.post("/faults", json={"endpoint": "token", "status": 500, "times": "always"}).raise_for_status()

    page = ben.microsoft_signin(BEN_AT_MICROSOFT)

    expect_refused_at_signin(page, UNAVAILABLE)
    assert not ben.is_signed_in()
    assert ben.sign_in_with_password(people["ben"], authenticator).url.path == "/portal/"


def test_microsofts_token_endpoint_hanging_is_given_up_and_password_sign_in_goes_on(
    new_visitor, emulator_control, console, people, authenticator, ben_connected
):
    ben = new_visitor()
    # Longer than the portal waits (ENTRA_HTTP_TIMEOUT is 3 s for the tests).
    emulator_control.post("/faults", json={"endpoint": "token", "hang_seconds": 8}).raise_for_status()
    answer = ben.microsoft_signin(BEN_AT_MICROSOFT, hold=True)

    started = time.monotonic()
    page = ben.get(answer)

    assert time.monotonic() - started < 7, "the portal waited for Microsoft past its timeout"
    expect_refused_at_signin(page, UNAVAILABLE)
    assert not ben.is_signed_in()
    assert last_event(console, "signin.failed")["details"]["code"] == "timeout"
    assert ben.sign_in_with_password(people["ben"], authenticator).url.path == "/portal/"
