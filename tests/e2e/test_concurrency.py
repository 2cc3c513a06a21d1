"""Many people signing in at the same moment, on SQLite (the default a new installation runs on)
and on PostgreSQL, each behind gunicorn with several worker processes.

Every sign-in must end on the portal: no 500 from a locked database, no 503 from a busy one. And
every wrong password sent in the middle of it must be counted, exactly once, against its account
and against the client address, however many other requests write at the same time.
"""

import concurrent.futures
import json
import random
import re
from collections import Counter

import httpx
import pyotp
import pytest

from tests import postgres
from tests.e2e.conftest import running_portal

pytestmark = pytest.mark.e2e

PEOPLE = 120  # who sign in, all at once
MISTYPERS = 10  # other accounts that only get wrong passwords...
WRONG_ATTEMPTS = 3  # ...this many each: below THROTTLE_ACCOUNT_FAILURES (5), so none is paused
CLIENTS = 12  # browsers sending requests at the same moment
WORKERS = 2  # processes, each with the threads of the shipped gunicorn.conf.py
THREADS = 4
PASSWORD = "concurrent-sign-in-password"

SEED_PEOPLE = """
import json
from django.contrib.auth.hashers import make_password
from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.companies.models import Company
from tenantlink.lib import crypto

people = json.loads({people!r})
company = Company.objects.create(name="Load Test Ltd")
password = make_password({password!r})  # one Argon2 hash for everyone: each costs 19 MiB and some 40 ms
User.objects.bulk_create(
    User(username=username, display_name=name, company=company, password=password) for username, name, _seed in people
)
users = User.objects.in_bulk([username for username, _name, _seed in people], field_name="username")
TOTPDevice.objects.bulk_create(
    TOTPDevice(user=users[username], encrypted_seed=crypto.encrypt(seed)) for username, _name, seed in people
)
"""

COUNT_FAILURES = """
import json
from tenantlink.accounts.models import Throttle, User
from tenantlink.audit.models import Action, AuditEvent

failures = dict(Throttle.objects.values_list("key", "failures"))
print(json.dumps({{
    "accounts": {{user.username: failures.get(f"user:{{user.pk}}") for user in User.objects.filter(username__in={names!r})}},
    "address": failures.get("address:127.0.0.1"),
    "audited_failures": AuditEvent.objects.filter(action=Action.SIGNIN_FAILED).count(),
    "audited_signins": AuditEvent.objects.filter(action=Action.SIGNIN_SUCCEEDED).count(),
}}))
"""


class Unexpected(Exception):
    """A page answered what a browser would not expect."""


def form_token(browser, path):
    """Open the form at `path` as a browser does; its CSRF token."""
    page = browser.get(path)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if page.status_code != 200 or not match:
        raise Unexpected(f"GET {path}: HTTP {page.status_code}")
    return match.group(1)


def post(browser, path, **fields):
    return browser.post(path, data={"csrfmiddlewaretoken": form_token(browser, path), **fields})


def sign_in(url, username, name, seed):
    """The whole sign-in, as a browser does it: "ok", or what went wrong."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        try:
            answer = post(browser, "/signin/", username=username, password=PASSWORD)
            if answer.status_code != 302 or answer.headers["location"] != "/signin/verify/":
                raise Unexpected(f"POST /signin/: HTTP {answer.status_code}")
            answer = post(browser, "/signin/verify/", code=pyotp.TOTP(seed).now())
            if answer.status_code != 302 or answer.headers["location"] != "/portal/":
                raise Unexpected(f"POST /signin/verify/: HTTP {answer.status_code}")
            page = browser.get("/portal/")
            if page.status_code != 200 or f"Welcome, {name}" not in page.text:
                raise Unexpected(f"GET /portal/: HTTP {page.status_code}")
        except (Unexpected, httpx.HTTPError) as problem:
            return str(problem) or repr(problem)
    return "ok"


def mistype_password(url, username):
    """One wrong password: "refused" when the page says so, or what went wrong."""
    with httpx.Client(base_url=url, timeout=60) as browser:
        try:
            answer = post(browser, "/signin/", username=username, password="wrong-password")
        except (Unexpected, httpx.HTTPError) as problem:
            return str(problem) or repr(problem)
    if answer.status_code != 200 or "We could not sign you in" not in answer.text:
        return f"POST /signin/ with a wrong password: HTTP {answer.status_code}"
    return "refused"


@pytest.fixture(params=["sqlite", "postgresql"])
def busy_portal(request, tmp_path):
    """A portal of its own with several workers and threads on an empty database, and the people
    who will use it."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        server = request.getfixturevalue("database_server")
        database_url = postgres.create_database(postgres.with_database(server, "tenantlink_concurrency"))
    people = [(f"user{n:03}", f"Person {n:03}", pyotp.random_base32()) for n in range(PEOPLE + MISTYPERS)]
    try:
        # Every request comes from 127.0.0.1: the address limit must not pause the load itself.
        with running_portal(
            database_url,
            tmp_path,
            workers=WORKERS,
            extra_args=("--threads", str(THREADS)),
            THROTTLE_ADDRESS_FAILURES="100000",
        ) as (
            portal,
            service,
        ):
            portal.shell(SEED_PEOPLE.format(people=json.dumps(people), password=PASSWORD))
            yield portal, service, people[:PEOPLE], [username for username, _name, _seed in people[PEOPLE:]]
    finally:
        if request.param == "postgresql":
            postgres.drop_database(database_url)


def test_every_simultaneous_sign_in_succeeds_and_every_failure_is_counted(busy_portal):
    portal, service, people, mistypers = busy_portal
    jobs = [(sign_in, portal.url, *person) for person in people]
    jobs += [(mistype_password, portal.url, username) for username in mistypers] * WRONG_ATTEMPTS
    random.shuffle(jobs)

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as clients:
        outcomes = list(clients.map(lambda job: job[0](*job[1:]), jobs))

    problems = [outcome for outcome in outcomes if outcome not in ("ok", "refused")]
    assert not problems, (
        f"{len(problems)} of {len(jobs)} browsers failed: {dict(Counter(problems))}\n"
        + "\n".join(line for line in service.output().splitlines() if "Error" in line or "unavailable" in line)[-3000:]
    )
    assert outcomes.count("ok") == len(people)
    counts = json.loads(portal.shell(COUNT_FAILURES.format(names=mistypers)))
    assert counts["accounts"] == dict.fromkeys(mistypers, WRONG_ATTEMPTS)
    # Every right password or code gave its attempt back: only the wrong ones remain.
    assert counts["address"] == len(mistypers) * WRONG_ATTEMPTS
    assert counts["audited_failures"] == len(mistypers) * WRONG_ATTEMPTS
    assert counts["audited_signins"] == len(people)
