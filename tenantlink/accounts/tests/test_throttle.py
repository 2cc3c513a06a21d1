import datetime

from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from tenantlink.accounts import throttle
from tenantlink.accounts.forms import CODE_FAILED, SIGNIN_FAILED
from tenantlink.accounts.models import Throttle
from tenantlink.accounts.throttle import account_key
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import PASSWORD, code_for
from tenantlink.lib.hashers import Argon2idHasher


def wrong_passwords(client, username, times):
    for _ in range(times):
        client.post("/signin/", {"username": username, "password": "not the password"})


def end_pauses():
    Throttle.objects.filter(locked_until__isnull=False).update(
        locked_until=timezone.now() - datetime.timedelta(seconds=1)
    )


def test_repeated_wrong_passwords_pause_the_account(client, member, settings):
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES)
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert str(SIGNIN_FAILED) in response.content.decode()  # the same words as a wrong password
    assert response.status_code == 200
    assert "verify" not in response.get("Location", "")
    event = AuditEvent.objects.get(action=Action.SIGNIN_LOCKED, target_label="bob")
    assert event.target_user == member and event.company == member.company


def test_the_pause_ends_by_itself(client, member, settings):
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, target_user=member).exists()
    end_pauses()
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.url == "/signin/verify/"
    event = AuditEvent.objects.get(action=Action.SIGNIN_UNLOCKED, target_label="bob")
    assert event.company == member.company


def test_every_spelling_of_a_username_counts_against_the_same_account(client, member, settings):
    for spelling in ("bob", "BOB", " Bob", "bOb ", "boB"):
        client.post("/signin/", {"username": spelling, "password": "not the password"})
    response = client.post("/signin/", {"username": "Bob", "password": PASSWORD})
    assert str(SIGNIN_FAILED) in response.content.decode()


def test_guesses_sent_together_cannot_outrun_the_count(client, member, settings):
    # Every attempt is counted before its password is checked: with the limit used up by
    # attempts still in progress, the next one is refused even though none has failed yet.
    request = client.get("/signin/").wsgi_request
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES):
        assert throttle.begin_attempt(request, "bob", member)
    assert not throttle.begin_attempt(request, "bob", member)


def test_the_right_password_sent_many_times_at_once_pauses_nothing(client, member, settings):
    # Attempts still being checked use up the count, so the ones beyond it are refused; but
    # none of them failed, so the account is not paused once they are done.
    request = client.get("/signin/").wsgi_request
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES):
        assert throttle.begin_attempt(request, "bob", member)
    assert not throttle.begin_attempt(request, "bob", member)
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES):
        throttle.attempt_succeeded(request, member)
    assert client.post("/signin/", {"username": "bob", "password": PASSWORD}).url == "/signin/verify/"
    assert not AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED).exists()


def test_an_unknown_username_is_not_written_to_the_audit_log(client, member):
    client.post("/signin/", {"username": "hunter2-oops-my-password", "password": "x"})
    event = AuditEvent.objects.get(action=Action.SIGNIN_FAILED)
    assert event.target_label == "(unknown username)"
    assert "hunter2" not in str(event.details)


def test_a_pause_looks_the_same_for_an_account_that_does_not_exist(client, member, settings):
    wrong_passwords(client, "ghost", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    ghost = client.post("/signin/", {"username": "ghost", "password": PASSWORD})
    bob = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert ghost.status_code == bob.status_code == 200
    assert str(SIGNIN_FAILED) in ghost.content.decode() and str(SIGNIN_FAILED) in bob.content.decode()


def count_hashes(monkeypatch):
    """A list that gets an item for each password hashed (checked, or hashed for equal timing) from now on."""
    hashed = []
    for method in ("encode", "verify"):
        original = getattr(Argon2idHasher, method)
        monkeypatch.setattr(
            Argon2idHasher,
            method,
            lambda hasher, *args, _original=original: hashed.append(1) or _original(hasher, *args),
        )
    return hashed


def test_guesses_at_a_paused_name_cost_no_password_hashing(client, member, admin, settings, monkeypatch):
    # The hash is what a guess costs the portal: a flood of guesses at a paused name, one that
    # exists or one that does not, must not make the portal hash each of them.
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    wrong_passwords(client, "ghost", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    hashed = count_hashes(monkeypatch)
    for name in ("bob", "ghost") * 5:
        response = client.post("/signin/", {"username": name, "password": PASSWORD})
        assert str(SIGNIN_FAILED) in response.content.decode()
    assert hashed == []
    # A name that is not paused still costs its hash, the same whether or not it exists.
    for name in ("alice", "nobody"):
        client.post("/signin/", {"username": name, "password": "not the password"})
    assert len(hashed) == 2


def test_a_name_that_is_not_ascii_finds_nobody_on_any_database(client, member, settings, monkeypatch):
    # "\u212aarl" starts with the Kelvin sign, which PostgreSQL's lower() reads as "k" in a UTF-8
    # locale: were it to find karl there, pausing it would pause karl, and "karl" answering fast
    # would tell that he exists. Here a database whose lower() folds it (as Python's does).
    from tenantlink.accounts.models import User
    from tenantlink.conftest import make_user

    make_user("karl", member.company)
    manager = type(User.objects)
    lookup = manager.with_username
    monkeypatch.setattr(manager, "with_username", lambda users, name: lookup(users, name.lower()))
    wrong_passwords(client, "\u212aarl", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    wrong_passwords(client, "\u212aurt", settings.THROTTLE_ACCOUNT_FAILURES + 1)  # nobody's, either way
    hashed = count_hashes(monkeypatch)
    for name in ("karl", "kurt"):
        client.post("/signin/", {"username": name, "password": "not the password"})
    assert len(hashed) == 2


def test_a_spelling_that_finds_no_account_pauses_no_other_spelling(client, member, settings, monkeypatch):
    # Full-width letters find no account (usernames are a–z): "ｂｏｂ" is a name nobody has. Had
    # its pause been "bob"'s as a name nobody has, "ghost" would be refused without hashing and
    # the real "bob" hashed: the time taken would tell which names exist.
    wrong_passwords(client, "ｂｏｂ", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    wrong_passwords(client, "ｇｈｏｓｔ", settings.THROTTLE_ACCOUNT_FAILURES + 1)
    hashed = count_hashes(monkeypatch)
    for name in ("bob", "ghost", "GHOST"):
        client.post("/signin/", {"username": name, "password": "not the password"})
    assert len(hashed) == 3


def test_repeated_wrong_codes_pause_the_account(client, member, settings):
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    wrong = "000000" if code_for(member) != "000000" else "111111"
    for _ in range(settings.THROTTLE_ACCOUNT_FAILURES):
        client.post("/signin/verify/", {"code": wrong})
    response = client.post("/signin/verify/", {"code": code_for(member)})
    assert str(CODE_FAILED) in response.content.decode()
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, target_user=member).exists()
    # …and the password step is paused too: the count belongs to the account.
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert str(SIGNIN_FAILED) in response.content.decode()

    end_pauses()
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert client.post("/signin/verify/", {"code": code_for(member)}).url == "/portal/"


def test_one_address_trying_many_accounts_is_paused(client, member, settings):
    settings.THROTTLE_ADDRESS_FAILURES = 6
    for index in range(5):
        response = client.post("/signin/", {"username": f"user{index}", "password": "guess"})
        assert response.status_code == 200
    # The sixth failure uses up the address's attempts: the pause starts with it, and says so.
    assert client.post("/signin/", {"username": "user5", "password": "guess"}).status_code == 429
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 429
    assert "Please wait a few minutes" in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, target_label="address:127.0.0.1").exists()

    other_address = client.post("/signin/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="10.0.0.8")
    assert other_address.url == "/signin/verify/"


def test_one_ipv6_network_trying_many_accounts_is_paused_whichever_of_its_addresses_it_uses(client, member, settings):
    """A subscriber's devices take any address in their /64: counted as one client."""
    settings.THROTTLE_ADDRESS_FAILURES = 6
    for index in range(6):
        client.post(
            "/signin/", {"username": f"user{index}", "password": "guess"}, REMOTE_ADDR=f"2001:db8:1:2::{index + 1}"
        )

    response = client.post("/signin/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert response.status_code == 429
    assert AuditEvent.objects.filter(action=Action.SIGNIN_LOCKED, target_label="address:2001:db8:1:2::/64").exists()
    neighbour = client.post("/signin/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="2001:db8:1:3::1")
    assert neighbour.url == "/signin/verify/"


def test_without_a_known_address_wrong_passwords_pause_the_account_not_everybody(
    client, member, settings, caplog, monkeypatch
):
    """Served on a unix socket without a trusted proxy header, no client has an address: one
    client's failures must not pause every other client's sign-in."""
    monkeypatch.setattr(throttle, "_said_no_address", False)
    settings.THROTTLE_ADDRESS_FAILURES = 3
    for index in range(4):
        client.post("/signin/", {"username": f"user{index}", "password": "guess"}, REMOTE_ADDR="")

    response = client.post("/signin/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="")
    assert response.url == "/signin/verify/"
    assert not Throttle.objects.filter(key__startswith="address:").exists()
    # The operator is told, once.
    assert caplog.text.count("A sign-in came without a client address") == 1


def test_a_complete_signin_forgives_earlier_failures(client, member, settings):
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES - 1)
    client.post("/signin/", {"username": "bob", "password": PASSWORD})
    client.post("/signin/verify/", {"code": code_for(member)})
    client.post("/signout/")
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES - 1)
    assert client.post("/signin/", {"username": "bob", "password": PASSWORD}).url == "/signin/verify/"


def test_failures_outside_the_window_are_forgotten(client, member, settings):
    wrong_passwords(client, "bob", settings.THROTTLE_ACCOUNT_FAILURES - 1)
    Throttle.objects.filter(key=account_key("bob", member)).update(
        window_started_at=timezone.now() - datetime.timedelta(hours=1)
    )
    wrong_passwords(client, "bob", 1)
    assert client.post("/signin/", {"username": "bob", "password": PASSWORD}).url == "/signin/verify/"
