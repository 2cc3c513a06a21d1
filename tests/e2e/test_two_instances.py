"""Two portal processes on one PostgreSQL database, as behind a load balancer: every flow started
on one instance finishes on the other.

In production both instances sit behind one load balancer at one public address, the SITE_URL
both are configured with, and that address is also the redirect URI registered at Microsoft. The
test builds exactly that: a public address where nothing listens, given to both instances as
SITE_URL and registered at the emulator, and a scripted browser whose requests to it go through
`LoadBalancer`, which forwards each one to the instance the story names (the Host header stays the
public one, as a proxy keeps it). Rewriting the held callback's host to the other instance's
port instead would not be honest: that instance would then be asked to accept an answer sent to
a redirect URI that is not its own, which no real deployment does.

Both instances share the database (sessions, half-finished sign-ins, flows waiting for Microsoft,
throttles, Microsoft's cached keys), SECRET_KEY and FIELD_ENCRYPTION_KEYS, and nothing else.
"""

import contextlib
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantlink import demo
from tests import postgres
from tests.e2e.conftest import Portal, demo_people, free_port, reset_emulator, running_portal
from tests.e2e.microsoft_steps import (
    BEN_AT_MICROSOFT,
    CONNECT_BEN,
    CONNECTED,
    CONTOSO,
    STAGE,
    Authenticator,
    Console,
    MicrosoftAccount,
    Visitor,
    connections,
    messages_on,
)

pytestmark = pytest.mark.e2e

ADA_AT_MICROSOFT = MicrosoftAccount("ada@contoso.onmicrosoft.com", "", CONTOSO, "Ada")
ACTIVE = "is active: Microsoft confirmed the approval."
REFUSED = "We could not sign you in"
THROTTLE_ACCOUNT_FAILURES = 5  # the portal's default, which both instances run with
METRICS_TOKEN = "metrics-token-for-the-two-instances-0123456789"

# The demo people and nothing else: no integration, no connection, no flow waiting for Microsoft,
# no paused sign-in, no audit event.
NO_INTEGRATIONS = """
from tenantlink.accounts.models import Throttle
from tenantlink.audit.models import AuditEvent
from tenantlink.demo import seed
from tenantlink.sso.models import CachedDocument, Integration, PendingAuthorization
seed()
Throttle.objects.all().delete()
Integration.objects.all().delete()
PendingAuthorization.objects.all().delete()
CachedDocument.objects.all().delete()
AuditEvent.objects.all().delete()
"""

INTEGRATION = """
import json
from tenantlink.sso.models import Integration
print(json.dumps(list(Integration.objects.values("tenant_id", "status")), default=str))
"""

THROTTLE_OF_NILS = """
import json
from tenantlink.accounts.models import Throttle, User
from tenantlink.audit.models import AuditEvent
throttle = Throttle.objects.filter(key=f"user:{User.objects.get(username='nils').pk}").first()
pause = AuditEvent.objects.filter(action="signin.locked", target_label="nils").first()
print(json.dumps({
    "failures": throttle and throttle.failures,
    "paused": bool(throttle and throttle.locked_until),
    "audited_pause": pause and pause.details,
}))
"""


class LoadBalancer(httpx.BaseTransport):
    """The browser's way to the public address: each request goes to the instance named in
    `target`, and `served` records who answered what. Requests to anyone else (Microsoft) pass."""

    def __init__(self, public_url, instances):
        self.public = urlsplit(public_url).netloc
        self.instances = instances
        self.target = next(iter(instances))
        self.served = []
        self.network = httpx.HTTPTransport()

    def handle_request(self, request):
        if request.url.netloc.decode() != self.public:
            return self.network.handle_request(request)
        port = urlsplit(self.instances[self.target]).port
        forwarded = httpx.Request(
            request.method, request.url.copy_with(port=port), headers=request.headers, stream=request.stream
        )
        self.served.append((self.target, request.method, request.url.path))
        return self.network.handle_request(forwarded)

    def close(self):
        self.network.close()


class Browser(Visitor):
    """A person's browser (microsoft_steps.Visitor) at the public address; `on("B")` sends its
    next requests to instance B."""

    def __init__(self, public, instances):
        super().__init__(public)
        self.http.close()
        self.balancer = LoadBalancer(public.url, instances)
        self.http = httpx.Client(timeout=30, follow_redirects=False, transport=self.balancer)

    def on(self, instance):
        self.balancer.target = instance
        return self

    def served_by(self, path):
        """Which instance answered the last request for `path`."""
        return next(instance for instance, _method, served in reversed(self.balancer.served) if served == path)


@pytest.fixture(scope="module")
def instances(database_server, emulator, tmp_path_factory):
    """Instances A and B on one database, both at the public address; the public portal and the
    instances' own addresses."""
    database_url = postgres.create_database(postgres.with_database(database_server, "tenantlink_two_instances"))
    public_url = f"http://127.0.0.1:{free_port()}"  # the load balancer's: nothing listens there
    settings = {
        "SITE_URL": public_url,
        "ENTRA_AUTHORITY": emulator,
        "ENTRA_CLIENT_ID": demo.DEMO_CLIENT_ID,
        "ENTRA_CLIENT_SECRET": demo.DEMO_CLIENT_SECRET,
        "ENTRA_HTTP_TIMEOUT": "3",
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    try:
        with contextlib.ExitStack() as stack:
            a, _service = stack.enter_context(
                running_portal(database_url, tmp_path_factory.mktemp("instance_a"), **settings)
            )
            b, _service = stack.enter_context(
                running_portal(database_url, tmp_path_factory.mktemp("instance_b"), **settings)
            )
            yield Portal(public_url, a.env, a.mailbox), {"A": a.url, "B": b.url}
    finally:
        postgres.drop_database(database_url)


@pytest.fixture(scope="module")
def console(instances, tmp_path_factory):
    public, _instances = instances
    console = Console(public, tmp_path_factory.mktemp("console") / "output.log")
    yield console
    console.close()


@pytest.fixture
def microsoft(emulator, instances):
    """The emulator at its start, with the public callbacks registered for the demo app."""
    public, _instances = instances
    with reset_emulator(emulator, public.url) as control:
        yield control


@pytest.fixture
def people(console, microsoft):
    console.run(NO_INTEGRATIONS)
    return demo_people()


@pytest.fixture
def with_integration(console, microsoft):
    """The demo people, and Contoso Ltd's integration of the Contoso tenant active."""
    console.run(STAGE)
    return demo_people()


@pytest.fixture
def new_browser(instances):
    """Opens browsers (each a profile of its own) at the public address, closed after the test."""
    public, addresses = instances
    browsers = []

    def open_one():
        browsers.append(Browser(public, addresses))
        return browsers[-1]

    yield open_one
    for opened in browsers:
        opened.close()


def test_the_password_on_one_instance_and_the_code_on_the_other(new_browser, people):
    nils, authenticator = new_browser(), Authenticator()

    nils.on("A").post("/signin/", username="nils", password=people["nils"].password)
    page = nils.on("B").post("/signin/verify/", code=authenticator.code(people["nils"]))

    assert page.url.path == "/portal/", messages_on(page)
    assert "Welcome, Nils" in page.text
    assert nils.served_by("/signin/") == "A"
    assert nils.served_by("/signin/verify/") == nils.served_by("/portal/") == "B"


def test_a_session_opened_on_one_instance_is_used_and_ended_on_the_other(new_browser, people):
    ada, authenticator = new_browser(), Authenticator()
    ada.on("A").sign_in_with_password(people["ada"], authenticator)

    page = ada.on("B").get("/company/users/")
    assert page.status_code == 200 and "nils" not in page.text and "ben" in page.text

    ada.on("B").sign_out()
    assert not ada.on("A").is_signed_in()


def test_admin_consent_started_on_one_instance_finishes_on_the_other(new_browser, console, people):
    ada, authenticator = new_browser(), Authenticator()
    ada.on("A").sign_in_with_password(people["ada"], authenticator)
    ada.callback = f"{ada.portal.url}/sso/consent/callback/"

    at_microsoft = ada.post("/company/sso/add/", hold_callback=True, tenant="contoso.onmicrosoft.com", name="")
    answer = ada.at_microsoft(at_microsoft, ADA_AT_MICROSOFT)
    assert ada.served_by("/company/sso/add/") == "A"
    page = ada.on("B").get(answer)

    assert ada.served_by("/sso/consent/callback/") == "B"
    assert any(ACTIVE in message for message in messages_on(page)), messages_on(page)
    assert console.json(INTEGRATION) == [{"tenant_id": CONTOSO, "status": "active"}]


def test_connecting_started_on_one_instance_finishes_on_the_other(new_browser, console, with_integration):
    ben, authenticator = new_browser(), Authenticator()
    ben.on("A").sign_in_with_password(with_integration["ben"], authenticator)

    answer = ben.connect(BEN_AT_MICROSOFT, hold=True)
    page = ben.on("B").get(answer)

    assert ben.served_by("/sso/connect/") == "A" and ben.served_by("/sso/callback/") == "B"
    assert any(CONNECTED in message for message in messages_on(page)), messages_on(page)
    assert connections(console) == [["ben", CONTOSO, BEN_AT_MICROSOFT.oid]]


def test_microsoft_sign_in_started_on_one_instance_finishes_on_the_other(new_browser, console, with_integration):
    console.run(CONNECT_BEN)
    ben = new_browser()

    answer = ben.on("B").microsoft_signin(BEN_AT_MICROSOFT, hold=True)
    page = ben.on("A").get(answer)

    assert ben.served_by("/sso/signin/") == "B" and ben.served_by("/sso/callback/") == "A"
    assert page.url.path == "/portal/", messages_on(page)
    assert "Welcome, Ben Berg" in page.text
    assert ben.on("B").is_signed_in()


def test_wrong_passwords_on_both_instances_count_against_one_limit(new_browser, console, people):
    nils = new_browser()
    for attempt in range(1, THROTTLE_ACCOUNT_FAILURES + 1):
        page = nils.on("AB"[attempt % 2]).post("/signin/", username="nils", password="not-the-password")
        assert REFUSED in page.text
        assert console.json(THROTTLE_OF_NILS)["failures"] == attempt

    # The limit is used up: the right password is refused on either instance, and not checked.
    for instance in "AB":
        page = nils.on(instance).post("/signin/", username="nils", password=people["nils"].password)
        assert page.url.path == "/signin/" and REFUSED in page.text, instance
    throttle = console.json(THROTTLE_OF_NILS)
    assert throttle["paused"]
    assert throttle["failures"] == THROTTLE_ACCOUNT_FAILURES
    assert throttle["audited_pause"]["attempts"] == THROTTLE_ACCOUNT_FAILURES


def scraped(address, path="/metrics"):
    """Each figure of an instance's /metrics, as a scraper reads it, on a connection of its own
    (so that either worker of the instance may answer)."""
    page = httpx.get(f"{address}{path}", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert page.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page.text)
        for sample in family.samples
    }


def test_an_instances_metrics_count_the_sign_ins_of_all_its_workers(new_browser, instances, people):
    _public, addresses = instances
    signins = ("tenantlink_signins_total", (("method", "totp"), ("outcome", "success")))
    before, before_on_b = (scraped(addresses[instance]).get(signins, 0) for instance in "AB")
    for name in ("ada", "ben", "nils"):
        new_browser().on("A").sign_in_with_password(people[name], Authenticator())

    # Whichever of A's two workers answers the scrape, it counts all three; B counted none of them.
    assert {scraped(addresses["A"]).get(signins, 0) for _ in range(8)} == {before + 3}
    assert scraped(addresses["B"]).get(signins, 0) == before_on_b
    # The leaver check's state is read from the database: the same on both instances.
    leaver_figures = scraped(addresses["A"], "/metrics/leavers")
    assert leaver_figures == scraped(addresses["B"], "/metrics/leavers")
    assert leaver_figures[("tenantlink_leaver_held_users", ())] == 0
