"""The people of the portal's tests: an administrator and a member of Contoso (which holds an
SSO licence), and an outsider administrator of Northwind (no licence)."""

import datetime

import pyotp
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import set_script_prefix
from django.utils import timezone, translation

from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.companies.models import Company, Licence

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _db(db):
    """Every portal test may use the database."""


@pytest.fixture(autouse=True)
def _english():
    """A page in another language leaves that language active in the thread: back to English,
    so that the next test's messages read as it expects."""
    yield
    translation.deactivate()


@pytest.fixture
def contoso():
    company = Company.objects.create(name="Contoso Ltd")
    company.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=30))
    return company


@pytest.fixture
def northwind():
    return Company.objects.create(name="Northwind Traders")


# Two encryption keys (FIELD_ENCRYPTION_KEYS) for tests of a key rotation.
OLD_FIELD_KEY, NEW_FIELD_KEY = (
    "q2DA3Ce5nD1c4FZr-dvLJ2C3o8bqSHvDz2VHNS-DHgo=",
    "QHx8cPWlMUQ5OF_DTBGG8ndU_BShGMtogwjJvq-9jN0=",
)


def make_user(username, company, role=User.Role.MEMBER, enrolled=True, **fields):
    user = User.objects.create_user(
        username,
        PASSWORD,
        company=company,
        role=role,
        display_name=username.title(),
        email=f"{username}@example.com",
        **fields,
    )
    if enrolled:
        user.seed = pyotp.random_base32()
        TOTPDevice.enrol(user, user.seed, step=0)
    return user


@pytest.fixture
def admin(contoso):
    return make_user("alice", contoso, User.Role.ADMINISTRATOR)


@pytest.fixture
def member(contoso):
    return make_user("bob", contoso)


@pytest.fixture
def outsider(northwind):
    return make_user("olga", northwind, User.Role.ADMINISTRATOR)


def code_for(user, offset=0):
    """The authenticator code a user's phone would show now (or `offset` steps away)."""
    return pyotp.TOTP(user.seed).generate_otp(TOTPDevice.current_step() + offset)


def get_under_prefix(client, *paths, prefix="/app"):
    """The answers to GET `paths` with the portal served under `prefix`, a path of a shared host
    (gunicorn sets it from SCRIPT_NAME; the test client does not)."""
    set_script_prefix(prefix + "/")
    try:
        return [client.get(path, SCRIPT_NAME=prefix) for path in paths]
    finally:
        set_script_prefix("/")


def sign_in(client, user, password=PASSWORD):
    """The whole password + TOTP sign-in through the real views."""
    client.post("/signin/", {"username": user.username, "password": password})
    response = client.post("/signin/verify/", {"code": code_for(user)})
    assert response.status_code == 302 and response.url == "/portal/", response
    client.get(response.url)  # as a browser does: the first page after signing in
    return response


def signed_in_browser(user):
    """Another browser, with `user` signed in through the real pages."""
    browser = Client()
    sign_in(browser, user)
    return browser


@pytest.fixture
def admin_client(client, admin):
    sign_in(client, admin)
    return client


@pytest.fixture
def member_client(client, member):
    sign_in(client, member)
    return client


@pytest.fixture
def from_state(transactional_db):
    """For tests of a data migration: a MigrationExecutor whose database is at the given migration; the latest again afterwards."""
    executor = MigrationExecutor(connection)

    def at(migration):
        executor.migrate([migration])
        executor.loader.build_graph()
        return executor

    yield at
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def run_manage(*args, env):
    """manage.py as its own process with only `env`, as an operator or cron runs it."""
    import subprocess
    import sys

    from django.conf import settings

    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
