import re
from unittest import mock

import pyotp
from django.contrib.auth import SESSION_KEY
from django.test import Client

from tenantlink.accounts.forms import ConfirmCodeForm
from tenantlink.accounts.models import RecoveryCode, TOTPDevice
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import NEW_FIELD_KEY, OLD_FIELD_KEY, PASSWORD, code_for, make_user


def manual_key(response):
    return re.search(r'id="manual-key">([A-Z2-7 ]+)<', response.content.decode()).group(1).replace(" ", "")


def test_a_user_without_a_second_factor_is_walked_through_enrolment(client, contoso):
    cleo = make_user("cleo", contoso, enrolled=False)
    response = client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    assert response.url == "/signin/enrol/"
    assert client.get("/portal/").status_code == 302  # nothing before enrolment is done

    page = client.get("/signin/enrol/")
    html = page.content.decode()
    assert "<svg" in html and "QR code for your authenticator app" in html
    seed = manual_key(page)
    assert client.get("/signin/enrol/").content.decode().count(seed[:4]) >= 1  # same seed on reload
    assert manual_key(client.get("/signin/enrol/")) == seed

    response = client.post("/signin/enrol/", {"code": pyotp.TOTP(seed).now()}, follow=True)
    assert response.redirect_chain[-1][0] == "/profile/recovery-codes/new/?next=%2Fportal%2F"
    html = response.content.decode()
    assert "Your authenticator app is set up." in html
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", html)
    assert len(codes) == 10
    assert SESSION_KEY in client.session
    assert client.get("/portal/").status_code == 200
    assert TOTPDevice.objects.get(user=cleo).seed == seed
    assert RecoveryCode.remaining(cleo) == 10
    assert AuditEvent.objects.filter(action=Action.SECOND_FACTOR_ENROLLED, target_user=cleo).exists()


def test_someone_at_the_wrong_account_can_start_again_from_the_set_up_page(client, contoso, member):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})

    assert (
        '<a href="/signin/">Start again with a different account</a>' in client.get("/signin/enrol/").content.decode()
    )
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.url == "/signin/verify/"  # bob's second step, cleo's set-up forgotten
    client.post("/signin/verify/", {"code": code_for(member)})
    assert client.get("/portal/").context["user"] == member


def test_starting_again_ends_the_half_finished_sign_in_for_whoever_comes_next(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    seed = manual_key(client.get("/signin/enrol/"))

    client.get("/signin/")  # "Start again with a different account"

    response = client.post("/signin/enrol/", {"code": pyotp.TOTP(seed).now()})
    assert response.status_code == 302 and response.url == "/signin/"
    assert not TOTPDevice.objects.filter(user__username="cleo").exists()
    assert SESSION_KEY not in client.session


def test_a_wrong_confirmation_code_keeps_the_same_seed(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    seed = manual_key(client.get("/signin/enrol/"))
    wrong = "123456" if pyotp.TOTP(seed).now() != "123456" else "654321"
    response = client.post("/signin/enrol/", {"code": wrong})
    assert "That code does not match" in response.content.decode()
    assert manual_key(response) == seed
    assert SESSION_KEY not in client.session


def test_what_is_not_a_code_is_told_so_at_the_set_up_too(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    for typed in ("abc", "12345x", "١٢٣٤٥٦"):
        page = client.post("/signin/enrol/", {"code": typed}).content.decode()
        assert "That is not a code. Enter the 6 digits your authenticator app shows." in page
        assert "does not match" not in page


def test_the_confirmation_code_cannot_be_used_again_to_sign_in(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    seed = manual_key(client.get("/signin/enrol/"))
    code = pyotp.TOTP(seed).now()
    client.post("/signin/enrol/", {"code": code})
    client.post("/signout/")
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    client.post("/signin/verify/", {"code": code})
    assert SESSION_KEY not in client.session


def test_a_password_alone_cannot_replace_an_existing_authenticator(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    response = client.get("/signin/enrol/")
    assert response.url == "/signin/verify/"
    response = client.post("/signin/enrol/", {"code": "123456"})
    assert response.url == "/signin/verify/"
    assert TOTPDevice.objects.get(user=member).seed == member.seed


def test_of_two_browsers_setting_up_the_first_authenticator_at_once_only_the_first_gets_in(client, contoso):
    cleo = make_user("cleo", contoso, enrolled=False)
    cleos, other = client, Client()  # cleo, and someone else who has her password
    for browser in (cleos, other):
        browser.post("/signin/", {"username": "cleo", "password": PASSWORD})
    cleos_seed, other_seed = manual_key(cleos.get("/signin/enrol/")), manual_key(other.get("/signin/enrol/"))
    assert cleos_seed != other_seed

    # Cleo's code is confirmed while the other browser's request is past its own check of the code.
    is_valid = ConfirmCodeForm.is_valid

    def cleo_first(form):
        if form.seed == other_seed:
            assert cleos.post("/signin/enrol/", {"code": pyotp.TOTP(cleos_seed).now()}).status_code == 302
        return is_valid(form)

    with mock.patch.object(ConfirmCodeForm, "is_valid", cleo_first):
        response = other.post("/signin/enrol/", {"code": pyotp.TOTP(other_seed).now()}, follow=True)

    assert response.redirect_chain[-1][0] == "/signin/verify/"
    assert "An authenticator app was set up for your account in another browser" in response.content.decode()
    assert SESSION_KEY not in other.session and SESSION_KEY in cleos.session
    assert TOTPDevice.objects.get(user=cleo).seed == cleos_seed
    assert AuditEvent.objects.filter(action=Action.SECOND_FACTOR_ENROLLED, target_user=cleo).count() == 1


def test_recovery_codes_are_shown_only_once(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    seed = manual_key(client.get("/signin/enrol/"))
    client.post("/signin/enrol/", {"code": pyotp.TOTP(seed).now()}, follow=True)
    again = client.get("/profile/recovery-codes/new/", follow=True)
    assert again.redirect_chain[-1][0] == "/profile/settings/"
    assert "shown only once" in again.content.decode()
    assert not re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", again.content.decode())


def test_a_half_made_set_up_is_not_passed_on_to_the_next_user_of_the_browser(client, contoso):
    make_user("cleo", contoso, enrolled=False)
    make_user("dave", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    cleos_key = manual_key(client.get("/signin/enrol/"))
    client.post("/signin/", {"username": "dave", "password": PASSWORD})  # cleo walked away
    assert manual_key(client.get("/signin/enrol/")) != cleos_key


def test_a_password_change_elsewhere_cancels_a_half_finished_signin(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    member.set_password("a brand new passphrase")
    member.save()
    response = client.post("/signin/verify/", {"code": code_for(member)}, follow=True)
    assert response.redirect_chain[-1][0] == "/signin/"
    assert SESSION_KEY not in client.session


def test_digits_of_other_scripts_are_refused_calmly(client, member):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    response = client.post("/signin/verify/", {"code": "١٢٣٤٥٦"})
    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_a_set_up_begun_under_a_key_taken_out_since_starts_again(client, contoso, settings):
    make_user("cleo", contoso, enrolled=False)
    settings.FIELD_ENCRYPTION_KEYS = [OLD_FIELD_KEY]
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    first = client.get("/signin/enrol/").content.decode()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_FIELD_KEY]
    again = client.get("/signin/enrol/")
    assert again.status_code == 200 and "QR code for your authenticator app" in again.content.decode()
    assert again.content.decode() != first  # a new key to add


def test_recovery_codes_waiting_to_be_shown_are_not_readable_in_the_session_table(client, contoso):
    from tenantlink.accounts.models import Session

    make_user("cleo", contoso, enrolled=False)
    client.post("/signin/", {"username": "cleo", "password": PASSWORD})
    seed = manual_key(client.get("/signin/enrol/"))
    client.post("/signin/enrol/", {"code": pyotp.TOTP(seed).now()})  # not following to the page yet
    stored = Session.objects.get(session_key=client.cookies["sessionid"].value).get_decoded()
    page = client.get("/profile/recovery-codes/new/?next=/portal/").content.decode()
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", page)
    assert len(codes) == 10
    assert not any(code in str(stored) for code in codes)
