"""The operator's command line: companies, their SSO licences, users and second-factor resets.
Every change is written to the audit log as done by "command line"."""

import datetime
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.forms import SIGNIN_FAILED
from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.companies.models import Company, Licence
from tenantlink.conftest import NEW_FIELD_KEY, OLD_FIELD_KEY, PASSWORD, run_manage, sign_in


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def audited(action, company):
    event = AuditEvent.objects.get(action=action, company=company)
    assert event.actor is None and event.actor_label == "command line"
    return event


@pytest.fixture
def fabrikam():
    run("create_company", "Fabrikam Inc")
    return Company.objects.get(name="Fabrikam Inc")


# Companies -------------------------------------------------------------------------------------


def test_create_company():
    output = run("create_company", "  Fabrikam Inc ")

    company = Company.objects.get()
    assert company.name == "Fabrikam Inc"
    assert output == f"Created company 'Fabrikam Inc' (id {company.pk}).\n"
    assert not company.has_sso()
    assert audited(Action.COMPANY_CREATED, company).target_label == "Fabrikam Inc"


def test_a_company_name_is_taken_whatever_its_case(fabrikam):
    with pytest.raises(CommandError, match="exists already"):
        run("create_company", "FABRIKAM inc")

    assert Company.objects.count() == 1
    assert AuditEvent.objects.filter(action=Action.COMPANY_CREATED).count() == 1


def test_a_company_needs_a_name():
    with pytest.raises(CommandError, match="must not be empty"):
        run("create_company", "   ")
    assert not Company.objects.exists()
    with pytest.raises(CommandError, match="characters that turn the direction of the text"):
        run("create_company", "Contoso\u202eLtd")
    with pytest.raises(CommandError, match="at most 200 characters"):  # the database's column
        run("create_company", "Contoso " * 30)
    with pytest.raises(CommandError, match="characters that could not be read"):
        run("create_company", b"Contoso \xff Ltd".decode(errors="surrogateescape"))  # a byte not UTF-8
    assert not Company.objects.exists()


# Licences --------------------------------------------------------------------------------------


def test_grant_a_licence_for_a_number_of_days(fabrikam):
    before = timezone.now()
    output = run("licence", "grant", "fabrikam inc", "--days", "30")

    licence = fabrikam.licences.get()
    assert fabrikam.has_sso()
    assert before + datetime.timedelta(days=30) <= licence.valid_until <= timezone.now() + datetime.timedelta(days=30)
    assert output.startswith("Granted the SSO licence of Fabrikam Inc: valid until ")
    event = audited(Action.LICENCE_GRANTED, fabrikam)
    assert event.details == {"product": "sso", "valid_until": licence.valid_until.isoformat()}


def test_grant_a_licence_until_a_day_includes_that_whole_day(fabrikam):
    last_day = (timezone.now() + datetime.timedelta(days=100)).date()

    output = run("licence", "grant", "Fabrikam Inc", "--until", last_day.isoformat())

    licence = fabrikam.licences.get()
    assert licence.valid_until == datetime.datetime.combine(
        last_day + datetime.timedelta(days=1), datetime.time.min, datetime.UTC
    )
    assert fabrikam.has_sso(licence.valid_until - datetime.timedelta(seconds=1))
    assert not fabrikam.has_sso(licence.valid_until)
    assert (
        f"valid through {last_day:%Y-%m-%d} (until {last_day + datetime.timedelta(days=1):%Y-%m-%d} 00:00 UTC)"
        in output
    )


def test_granting_again_extends_the_licence(fabrikam):
    run("licence", "grant", "Fabrikam Inc", "--days", "30")
    first = fabrikam.licences.get()

    output = run("licence", "grant", "Fabrikam Inc", "--days", "365")

    extended = fabrikam.licences.get()
    assert extended.pk == first.pk and extended.valid_until > first.valid_until + datetime.timedelta(days=300)
    assert output.startswith("Extended the SSO licence of Fabrikam Inc")
    assert audited(Action.LICENCE_EXTENDED, fabrikam).details["valid_until"] == extended.valid_until.isoformat()


def test_granting_a_shorter_licence_keeps_the_longer_one(fabrikam):
    run("licence", "grant", "Fabrikam Inc", "--days", "365")
    ends = fabrikam.licences.get().valid_until

    output = run("licence", "grant", "Fabrikam Inc", "--days", "10")

    assert fabrikam.licences.get().valid_until == ends
    assert "nothing changed" in output
    assert not AuditEvent.objects.filter(action=Action.LICENCE_EXTENDED, company=fabrikam).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Say how long the licence is valid"),
        (["--days", "0"], "--days must be at least 1"),
        (["--days", "-5"], "--days must be at least 1"),
        (["--until", "2020-01-01"], "must end in the future"),
        (["--until", "2030-02-30"], "invalid fromisoformat value"),
        (["--days", "30", "--until", "2099-01-01"], "not allowed with argument"),
        (["--until", "9999-12-31"], "The last day of validity can be 9998-12-31 at the latest."),
        (["--days", "3000000"], "The last day of validity can be 9998-12-31 at the latest."),
        (["--days", "99999999999"], "The last day of validity can be 9998-12-31 at the latest."),
    ],
)
def test_a_licence_needs_a_sensible_end(fabrikam, args, message):
    with pytest.raises(CommandError, match=message):
        run("licence", "grant", "Fabrikam Inc", *args)

    assert not fabrikam.licences.exists()
    assert not AuditEvent.objects.filter(action=Action.LICENCE_GRANTED).exists()


def test_revoke_ends_sso_at_once(fabrikam):
    run("licence", "grant", "Fabrikam Inc", "--days", "30")

    output = run("licence", "revoke", "Fabrikam Inc")

    assert "Revoked the SSO licence of Fabrikam Inc." in output
    assert not fabrikam.has_sso()
    audited(Action.LICENCE_REVOKED, fabrikam)

    with pytest.raises(CommandError, match="has no SSO licence to revoke"):
        run("licence", "revoke", "Fabrikam Inc")
    assert AuditEvent.objects.filter(action=Action.LICENCE_REVOKED).count() == 1


def test_show_lists_a_companys_licences(fabrikam):
    assert run("licence", "show", "Fabrikam Inc") == "Fabrikam Inc has no licences.\n"

    Licence.objects.create(
        company=fabrikam,
        valid_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        valid_until=datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
    )
    run("licence", "grant", "Fabrikam Inc", "--until", "2099-12-31")

    lines = run("licence", "show", "Fabrikam Inc").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("sso") and lines[0].endswith("2100-01-01  Valid")
    assert lines[1] == "sso  2020-01-01 – 2021-01-01  Expired"


@pytest.mark.parametrize("action", ["grant", "revoke", "show"])
def test_an_unknown_company_is_an_error(fabrikam, action):
    with pytest.raises(CommandError, match="There is no company named 'Fabrikom'"):
        run("licence", action, "Fabrikom", "--days", "30")
    assert not Licence.objects.exists()


# Users -----------------------------------------------------------------------------------------


def initial_password(output):
    return re.search(r"Initial password \(shown once; the user must change it at first sign-in\): (\S+)", output).group(
        1
    )


def test_create_user_prints_an_initial_password_that_signs_in_once_changed(contoso):
    output = run(
        "create_user",
        "carol",
        "--company",
        "contoso ltd",
        "--display-name",
        "Carol Jones",
        "--email",
        "carol@example.com",
    )

    password = initial_password(output)
    assert output.count(password) == 1
    assert output.startswith("Created member 'carol' in Contoso Ltd.\n")
    carol = User.objects.get(username="carol")
    assert (carol.company, carol.role, carol.display_name, carol.email) == (
        contoso,
        User.Role.MEMBER,
        "Carol Jones",
        "carol@example.com",
    )
    assert carol.must_change_password and carol.check_password(password)
    assert not carol.has_second_factor

    wrong = Client().post("/signin/", {"username": "carol", "password": PASSWORD})
    assert str(SIGNIN_FAILED) in wrong.content.decode()
    right = Client().post("/signin/", {"username": "carol", "password": password})
    assert right.status_code == 302 and right.url == "/signin/enrol/"  # on to set up the authenticator

    event = audited(Action.USER_CREATED, contoso)
    assert event.target_user == carol and event.details == {"role": "member"}
    assert password not in str(AuditEvent.objects.values_list())


def test_every_user_gets_a_different_password(contoso):
    first = initial_password(run("create_user", "carol", "--company", "Contoso Ltd"))
    second = initial_password(run("create_user", "dora", "--company", "Contoso Ltd"))

    assert first != second and len(first) >= 12


def test_create_an_administrator(contoso):
    run("create_user", "dora", "--company", "Contoso Ltd", "--role", "administrator")

    assert User.objects.get(username="dora").is_company_admin


@pytest.mark.parametrize("username", ["bob", "BOB", " Bob "])
def test_a_username_is_taken_whatever_its_case(member, username):
    with pytest.raises(CommandError, match="is taken"):
        run("create_user", username, "--company", "Contoso Ltd")

    assert User.objects.filter(username__iexact="bob").count() == 1
    assert not AuditEvent.objects.filter(action=Action.USER_CREATED).exists()


def test_create_user_in_an_unknown_company_is_an_error(contoso):
    with pytest.raises(CommandError, match="There is no company named 'Contoso'"):
        run("create_user", "carol", "--company", "Contoso")
    assert not User.objects.filter(username="carol").exists()


def test_create_user_refuses_a_malformed_username_or_email(contoso):
    with pytest.raises(CommandError, match="username"):
        run("create_user", "carol jones!", "--company", "Contoso Ltd")
    with pytest.raises(CommandError, match="email"):
        run("create_user", "carol", "--company", "Contoso Ltd", "--email", "not-an-address")
    assert not User.objects.filter(username__startswith="carol").exists()


def test_reset_second_factor_makes_the_user_enrol_again(member, contoso):
    RecoveryCode.replace_for(member)

    output = run("reset_second_factor", "BOB")

    assert output == "Reset the second factor of bob. They set up a new authenticator at next sign-in.\n"
    assert not TOTPDevice.objects.filter(user=member).exists()
    assert not RecoveryCode.objects.filter(user=member).exists()
    assert audited(Action.SECOND_FACTOR_RESET, contoso).target_user == member

    browser = Client()
    response = browser.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.url == "/signin/enrol/"


def test_reset_second_factor_of_a_user_without_one_says_so(contoso):
    User.objects.create_user("carol", PASSWORD, company=contoso)

    with pytest.raises(CommandError, match="carol has no second factor and no recovery codes: nothing to reset"):
        run("reset_second_factor", "carol")
    assert not AuditEvent.objects.filter(action=Action.SECOND_FACTOR_RESET).exists()


def test_reset_second_factor_of_a_user_with_recovery_codes_only_removes_them(contoso):
    carol = User.objects.create_user("carol", PASSWORD, company=contoso)
    RecoveryCode.replace_for(carol)

    output = run("reset_second_factor", "carol")

    assert output == "carol had no second factor; their recovery codes, if any, were removed.\n"
    assert audited(Action.SECOND_FACTOR_RESET, contoso).target_user == carol


def test_reset_second_factor_of_an_unknown_user_is_an_error(member):
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        run("reset_second_factor", "nobody")
    assert TOTPDevice.objects.filter(user=member).exists()


def test_after_reencrypting_the_seeds_the_old_key_can_go(settings, member):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_FIELD_KEY]
    TOTPDevice.objects.filter(user=member).delete()
    TOTPDevice.enrol(member, member.seed, step=0)  # encrypted with the old key
    settings.FIELD_ENCRYPTION_KEYS = [NEW_FIELD_KEY, OLD_FIELD_KEY]

    assert "Re-encrypted 1 authenticator seeds with the newest key" in run("reencrypt_seeds")

    settings.FIELD_ENCRYPTION_KEYS = [NEW_FIELD_KEY]
    sign_in(Client(), member)  # the code from his phone still works
    assert AuditEvent.objects.get(action=Action.SEEDS_REENCRYPTED).details == {"seeds": 1}
    settings.FIELD_ENCRYPTION_KEYS = [OLD_FIELD_KEY]
    with pytest.raises(CommandError, match="The seed of bob cannot be decrypted with any key"):
        run("reencrypt_seeds")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_FIELD_KEY]
    assert TOTPDevice.objects.get(user=member).seed == member.seed  # unchanged: nothing was written


@pytest.mark.parametrize(
    ("variables", "said", "traceback"),
    [
        (
            {"THROTTLE_WINDOW": "abc"},
            "Tenantlink cannot start: THROTTLE_WINDOW must be a whole number, not 'abc'.",
            False,
        ),
        (
            {"DATABASE_URL": "postgres://portal@127.0.0.1:9/portal?connect_timeout=2"},  # nothing listens on port 9
            "The database cannot be used: connection failed:",
            False,
        ),
        # A database that answers, and a command that fails in it (here: never migrated), keeps
        # its traceback: a failed migration must not read like an unreachable database.
        ({"DATABASE_URL": "sqlite:///{tmp}/empty.sqlite3"}, "OperationalError: no such table", True),
    ],
)
def test_a_command_run_by_cron_says_in_one_line_what_stops_it(variables, said, traceback, tmp_path):
    import os

    variables = {name: value.format(tmp=tmp_path) for name, value in variables.items()}
    environment = {**os.environ, "DEBUG": "true", **variables}
    result = run_manage("purge_expired", env=environment)
    assert result.returncode == 1
    assert said in result.stderr
    assert ("Traceback" in result.stderr) is traceback


@pytest.mark.parametrize("every", ["0", "-1"])
def test_the_leaver_check_runs_no_faster_than_every_second(every):
    with pytest.raises(CommandError, match="--every must be a number of seconds of at least 1"):
        run("check_leavers", "--every", every)
