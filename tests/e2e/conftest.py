"""The stage for end-to-end tests: PostgreSQL, the Entra emulator and the portal as real processes.

Everything is started once per test session on free ports and stopped at its end. The portal
runs under gunicorn exactly as in production (DEBUG off, its own database), so these tests see
what a browser would see. The people in the stories are the demo accounts of tenantlink/demo.py,
put back into their described state before every test.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tenantlink import demo
from tests import postgres

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
START_TIMEOUT = 30  # seconds for a process to answer; generous for a busy CI machine
# A fixed test key, so a failed run's database can still be read; never used outside tests.
FIELD_ENCRYPTION_KEY = "QHx8cPWlMUQ5OF_DTBGG8ndU_BShGMtogwjJvq-9jN0="
# Only these variables reach the portal from our own environment: a DEBUG=true or ALLOWED_HOSTS
# left in a developer's shell must not change what the tests check.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYTHONPATH", "SSL_CERT_FILE")


class ProcessFailed(Exception):
    pass


class Service:
    """A server started as a subprocess, its output going to a log file that start-up errors show."""

    def __init__(self, name, argv, env, log_path):
        self.name, self.log_path = name, log_path
        # A file, not a pipe: a pipe nobody reads fills up and stalls a chatty server.
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_until_answering(self, url, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessFailed(
                    f"{self.name} exited with code {self.process.returncode} while starting. Its output:\n{self.output()}"
                )
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return response
                last = f"HTTP {response.status_code}: {response.text[:500]}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.2)
        self.stop()
        raise ProcessFailed(
            f"{self.name} did not answer {url} within {timeout} s (last: {last}). Its output:\n{self.output()}"
        )

    def stop(self):
        if self.process.poll() is None:
            # The whole process group: gunicorn's workers and anything else the server forked.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def free_port():
    return postgres.free_port()


def base_environment():
    return {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}


@dataclass
class Portal:
    url: str
    env: dict
    mailbox: Path
    log_path: Path | None = None  # the server's output: requests, warnings, errors

    def manage(self, *args):
        """Run a manage.py command against the portal's database, as an operator would; its output."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ProcessFailed(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def shell(self, code):
        """Run Python with Django set up against the portal's database (manage.py shell -c)."""
        return self.manage("shell", "--no-imports", "-c", code)


@dataclass
class Person:
    username: str
    name: str
    company: str
    password: str
    totp_seed: str | None


@pytest.fixture(scope="session")
def database_server():
    """A PostgreSQL server: the one `python -m tests.postgres` started for this run, or our own."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        yield url
        return
    with postgres.running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def portal_database(database_server):
    """A database of its own for the portal process, next to pytest-django's test database."""
    url = postgres.create_database(postgres.with_database(database_server, "tenantlink_e2e"))
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="session")
def emulator_url():
    # Chosen before either process starts, so the portal is configured with its Microsoft
    # authority without waiting for (or depending on) the emulator process.
    return f"http://127.0.0.1:{free_port()}"


def start_emulator(url, log_path):
    """The Entra emulator with the demo directory as a process answering at `url`."""
    service = Service(
        "The Entra emulator",
        [
            PYTHON,
            "-m",
            "entra_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            url.rsplit(":", 1)[1],
            "--directory",
            str(ROOT / "entra_emulator" / "demo_directory.json"),
        ],
        {**base_environment(), "PYTHONUNBUFFERED": "1"},
        log_path,
    )
    service.wait_until_answering(f"{url}/organizations/v2.0/.well-known/openid-configuration")
    return service


@pytest.fixture(scope="session")
def emulator(emulator_url, tmp_path_factory):
    """The Entra emulator with the demo directory, answering at `emulator_url`."""
    service = start_emulator(emulator_url, tmp_path_factory.mktemp("emulator") / "output.log")
    try:
        yield emulator_url
    finally:
        service.stop()


@pytest.fixture(scope="session")
def portal(portal_database, emulator_url, tmp_path_factory):
    """The portal under gunicorn on a free port, migrated, DEBUG off, with the emulator as its
    Microsoft."""
    with running_portal(
        portal_database,
        tmp_path_factory.mktemp("portal"),
        ENTRA_AUTHORITY=emulator_url,
        ENTRA_CLIENT_ID=demo.DEMO_CLIENT_ID,
        ENTRA_CLIENT_SECRET=demo.DEMO_CLIENT_SECRET,
        # Short, so that a test of Microsoft not answering waits seconds, not the default ten.
        ENTRA_HTTP_TIMEOUT="3",
    ) as (portal, _service):
        yield portal


# Failed attempts of an earlier test must not pause sign-in for this one.
RESET_PEOPLE = (
    "from tenantlink.demo import seed\n"
    "from tenantlink.accounts.models import Throttle\n"
    "seed()\n"
    "Throttle.objects.all().delete()\n"
)


def demo_people():
    return {
        username: Person(username, name, company, password, totp_seed)
        for username, name, _email, company, _role, password, totp_seed in demo.ACCOUNTS
    }


@pytest.fixture
def people(portal):
    """The demo accounts, reset before each test: ada, ben and nils have their authenticator
    seeds from tenantlink/demo.py, cleo has none yet and enrols at her first sign-in."""
    portal.shell(RESET_PEOPLE)
    return demo_people()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Where the browser tests save screenshots for a person to look at: $E2E_SCREENSHOTS or a temp folder."""
    folder = (
        Path(os.environ["E2E_SCREENSHOTS"])
        if os.environ.get("E2E_SCREENSHOTS")
        else tmp_path_factory.mktemp("screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright: no browser download needed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start. The rest keep
            # the browser from reaching out to Google services from a machine without network.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def fresh_page(browser, **options):
    """A page in a fresh browser profile (no cookies carried over), at a desktop size; `options`
    for the profile, such as locale="sv-SE" or java_script_enabled=False."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser):
    with fresh_page(browser) as page:
        yield page


@contextlib.contextmanager
def running_portal(database_url, folder, workers=2, extra_args=(), **settings):
    """A portal of a test's own under gunicorn, beside the shared `portal`: migrated, DEBUG off,
    on `database_url`, with `workers` processes and `settings` added to its environment.
    `extra_args` go to gunicorn after ours, so they win (`--threads 4`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mailbox = folder / "mailbox"
    mailbox.mkdir(exist_ok=True)
    env = {
        **base_environment(),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "tenantlink.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "e2e-test-secret-key-not-for-production-2f6c0a9d7b14",
        "FIELD_ENCRYPTION_KEYS": FIELD_ENCRYPTION_KEY,
        "SITE_URL": url,
        # Mail goes to files that a test can read, as a person reads their inbox.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mailbox),
        **settings,
    }
    portal = Portal(url, env, mailbox, log_path=folder / "portal.log")
    portal.manage("migrate", "--no-input", "--verbosity", "0")
    service = Service(
        "The portal (gunicorn)",
        [
            PYTHON,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "tenantlink.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "1",
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
            # Gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl): a
            # second gunicorn, such as `make demo` left running, would take it over or lose it to us.
            "--no-control-socket",
            *extra_args,
        ],
        env,
        portal.log_path,
    )
    try:
        service.wait_until_answering(f"{url}/health/")
        yield portal, service
    finally:
        service.stop()


@contextlib.contextmanager
def reset_emulator(emulator_url, site_url):
    """The emulator's control API, the emulator back at its start (demo directory, original
    keys, no faults, nobody signed in), the portal at `site_url`'s callbacks registered."""
    with httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=10) as control:
        control.post("/reset").raise_for_status()
        for path in ("/sso/callback/", "/sso/consent/callback/"):
            control.post(
                f"/apps/{demo.DEMO_CLIENT_ID}/redirect_uris", json={"uri": f"{site_url}{path}"}
            ).raise_for_status()
        yield control


@pytest.fixture
def emulator_control(emulator, portal):
    """The emulator's control API (an httpx client at /_emulator/), with the emulator back at its
    start for each test: the demo directory, original keys, no faults, nobody signed in. The demo
    app is registered for the ports of `make demo`; the portal under test's callbacks are added."""
    with reset_emulator(emulator, portal.url) as control:
        yield control
        # A hanging or failing endpoint must not outlive the test that asked for it.
        control.delete("/faults").raise_for_status()


@pytest.fixture
def people_without_integrations(portal):
    """`people`, and no company with a single sign-on integration (nor its users' Microsoft
    connections), no Microsoft flow waiting for its callback and no single sign-on event in the
    audit log, so that a story reads its own. One trip to the database for all of it: each
    `portal.shell` costs most of a second."""
    portal.shell(
        RESET_PEOPLE + "from tenantlink.audit.models import AuditEvent\n"
        "from tenantlink.sso.models import Integration, PendingAuthorization\n"
        "Integration.objects.all().delete()\n"
        "PendingAuthorization.objects.all().delete()\n"
        "AuditEvent.objects.filter(action__startswith='sso.').delete()\n"
    )
    return demo_people()


@pytest.fixture
def new_visitor(portal):
    """Opens browsers (each a profile of its own), closed after the test."""
    opened = []

    def open_one():
        from tests.e2e.microsoft_steps import Visitor  # it imports this module

        opened.append(Visitor(portal))
        return opened[-1]

    yield open_one
    for visitor in opened:
        visitor.close()


@pytest.fixture(scope="module")
def console(portal, tmp_path_factory):
    """A Django console on the portal's database for the module's stories (microsoft_steps.Console)."""
    from tests.e2e.microsoft_steps import Console  # it imports this module

    console = Console(portal, tmp_path_factory.mktemp("console") / "output.log")
    yield console
    console.close()
