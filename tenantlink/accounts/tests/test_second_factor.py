import re

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import SESSION_KEY
from django.test import Client

from tenantlink.accounts.forms import CODE_FAILED, CODE_USED, NOT_A_CODE, RECOVERY_CODE_USED
from tenantlink.accounts.models import RecoveryCode
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for


def start(client, user):
    client.post("/signin/", {"username": user.username, "password": PASSWORD})


def test_a_wrong_code_is_refused_with_a_clear_message(client, member):
    start(client, member)
    response = client.post("/signin/verify/", {"code": "000000" if code_for(member) != "000000" else "111111"})
    assert response.status_code == 200
    assert str(CODE_FAILED) in response.content.decode()
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(
        action=Action.SIGNIN_FAILED, target_user=member, details__step="second_factor"
    ).exists()


def test_a_refused_code_is_not_left_in_the_field_for_the_next_to_be_typed_after_it(client, member):
    start(client, member)
    wrong = "000000" if code_for(member) != "000000" else "111111"
    page = client.post("/signin/verify/", {"code": wrong}).content.decode()
    field = re.search(r'<input [^>]*name="code"[^>]*>', page).group(0)
    assert "value=" not in field and wrong not in page


@pytest.mark.parametrize("typed", ["abc", "12345", "1234567", "١٢٣٤٥٦", "abcd-efgh-jkm0", "<b>"])
def test_what_is_not_a_code_is_said_and_no_guess_counted(client, member, settings, typed):
    start(client, member)
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES + 1):
        response = client.post("/signin/verify/", {"code": typed})
        assert str(NOT_A_CODE) in response.content.decode()
    assert client.post("/signin/verify/", {"code": code_for(member)}).url == "/portal/"  # nothing paused


def test_a_totp_code_is_accepted_only_once(client, member):
    code = code_for(member)
    start(client, member)
    assert client.post("/signin/verify/", {"code": code}).url == "/portal/"
    client.post("/signout/")

    start(client, member)
    response = client.post("/signin/verify/", {"code": code})
    assert response.status_code == 200
    assert str(CODE_USED) in response.content.decode()
    assert SESSION_KEY not in client.session


def test_a_used_code_sent_again_many_times_pauses_nothing(member):
    """The same form sent from many tabs at once (or a button pressed again and again): one gets
    in; the others are told the code was used, and are no guesses that would pause the account."""
    code, recovery = code_for(member), RecoveryCode.replace_for(member)[0]
    first = Client()
    start(first, member)
    assert first.post("/signin/verify/", {"code": code}).url == "/portal/"
    second = Client()
    start(second, member)
    assert second.post("/signin/verify/", {"code": recovery}).url == "/portal/"

    for again, said in [
        (code, CODE_USED),
        (recovery, RECOVERY_CODE_USED),
    ] * 6:  # more than the five failures that pause
        browser = Client()
        start(browser, member)
        page = browser.post("/signin/verify/", {"code": again}).content.decode()
        assert str(said).replace("'", "&#x27;") in page

    browser = Client()
    start(browser, member)
    assert browser.post("/signin/verify/", {"code": code_for(member, offset=1)}).url == "/portal/"
    assert not AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED).exists()
    refused = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED, target_user=member)
    assert refused.count() == 12 and all(event.details["reason"] == "code_used" for event in refused)


def test_an_older_code_than_the_last_accepted_one_is_refused(client, member):
    start(client, member)
    assert client.post("/signin/verify/", {"code": code_for(member, offset=1)}).url == "/portal/"
    client.post("/signout/")
    start(client, member)
    response = client.post("/signin/verify/", {"code": code_for(member)})
    assert SESSION_KEY not in client.session, response


def test_codes_from_far_away_in_time_are_refused(client, member):
    start(client, member)
    client.post("/signin/verify/", {"code": code_for(member, offset=-3)})
    assert SESSION_KEY not in client.session


def test_a_recovery_code_signs_in_once(client, member):
    codes = RecoveryCode.replace_for(member)
    start(client, member)
    response = client.post("/signin/verify/", {"code": codes[0].upper()}, follow=True)
    assert response.redirect_chain[-1][0] == "/portal/"
    assert "9 unused codes remain" in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.RECOVERY_CODE_USED, target_user=member).exists()
    client.post("/signout/")

    start(client, member)
    response = client.post("/signin/verify/", {"code": codes[0]})
    assert "That recovery code has been used already" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert client.post("/signin/verify/", {"code": codes[1]}).url == "/portal/"


def test_a_recovery_code_of_another_user_does_not_work(client, member, admin):
    codes = RecoveryCode.replace_for(admin)
    start(client, member)
    client.post("/signin/verify/", {"code": codes[0]})
    assert SESSION_KEY not in client.session
    assert RecoveryCode.remaining(admin) == 10


def test_the_second_step_needs_the_password_step_first(client, member):
    response = client.post("/signin/verify/", {"code": code_for(member)}, follow=True)
    assert response.redirect_chain[-1][0] == "/signin/"
    assert SESSION_KEY not in client.session


def test_the_seed_is_encrypted_at_rest(member):
    member.totp.refresh_from_db()
    assert member.seed not in member.totp.encrypted_seed
    assert member.totp.seed == member.seed


def test_recovery_codes_are_stored_hashed(member):
    codes = RecoveryCode.replace_for(member)
    stored = list(RecoveryCode.objects.filter(user=member).values_list("code_hash", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert all(code not in value and code.replace("-", "") not in value for value in stored)


def test_a_seed_this_instance_cannot_decrypt_is_the_operators_not_a_crash(client, member, settings, caplog):
    """An instance started without the key that encrypted the seeds (keys rotated in the wrong
    order): the person reads that the portal cannot answer now, the operator what to do."""
    code = code_for(member)
    start(client, member)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    response = client.post("/signin/verify/", {"code": code})

    assert response.status_code == 503
    assert "The portal cannot answer right now" in response.content.decode()
    assert SESSION_KEY not in client.session
    [line] = [record for record in caplog.records if "cannot be decrypted" in record.message]
    assert line.levelname == "ERROR" and "FIELD_ENCRYPTION_KEYS" in line.message
