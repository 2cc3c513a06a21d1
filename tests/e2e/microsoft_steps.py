"""Steps shared by the Microsoft sign-in stories (flows 3–6): the people at Microsoft (the Entra
emulator's demo directory), a scripted browser that goes between the portal and Microsoft over
HTTP, the people's authenticator apps, the portal's mailbox, and a Django console on the portal's
database for setting the stage and reading what is stored."""

import html
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import pyotp

from tests.e2e.conftest import PYTHON, ROOT

CONTOSO = "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"
FABRIKAM = "c2e8b5f1-6a3d-4f97-8b2e-5d1c9a7e4f30"
MICROSOFT_PASSWORD = "Entra-demo-1"  # every account in the emulator's demo directory


@dataclass(frozen=True)
class MicrosoftAccount:
    upn: str
    oid: str
    tid: str
    name: str


BEN_AT_MICROSOFT = MicrosoftAccount(
    "ben@contoso.onmicrosoft.com", "15550e69-065f-4d2c-b54d-9fd19885ed4c", CONTOSO, "Ben Berg"
)
FIONA_AT_MICROSOFT = MicrosoftAccount(
    "fiona@fabrikam.onmicrosoft.com", "d29cd951-130a-439d-b067-a58441d12a6c", FABRIKAM, "Fiona Falk"
)
FRANK_AT_MICROSOFT = MicrosoftAccount(
    "frank@fabrikam.onmicrosoft.com", "e5458d83-4f64-4e40-afb0-e68987aa858c", FABRIKAM, "Frank Fischer"
)

# What people read (the portal's words).
CONNECTED = "Microsoft sign-in is on. Your portal account is now connected to"
BAD_TOKEN = "Microsoft's answer did not pass the portal's security checks, so it was not accepted."
NEW_KEY = (
    "Microsoft signed its answer with a key the portal does not know yet. Microsoft changes its keys "
    "from time to time, and the portal fetches the new ones within a few minutes: try again in a few minutes."
)
UNAVAILABLE = "Microsoft could not be reached or did not answer in time. Try again in a few minutes."
NOT_CONNECTED = (
    "No portal account is connected to this Microsoft account. Sign in with your username and password "
    "first; then you can connect it."
)
NOT_FROM_THIS_BROWSER = "does not belong to a sign-in started in this browser"
NOT_OUR_ORGANIZATION = (
    "This Microsoft account does not belong to a Microsoft organization that your company has connected."
)
UNKNOWN_ORGANIZATION = "Your Microsoft organization is not connected to this portal."
TAKEN = "This Microsoft account is already connected to another portal account. Nothing was changed."
SESSION_ENDED = "Your Microsoft sign-in is no longer available for this portal account (its connection was removed"


# --- The portal's database ------------------------------------------------------------------------

# Reads one JSON line of Python source at a time, runs it, answers one JSON line with what it printed.
CONSOLE_LOOP = r"""
import contextlib, io, json, sys, traceback
for line in sys.stdin:
    printed = io.StringIO()
    answer = {}
    try:
        with contextlib.redirect_stdout(printed):
            exec(json.loads(line), {})
    except Exception:
        answer["error"] = traceback.format_exc()
    answer["output"] = printed.getvalue()
    sys.__stdout__.write(json.dumps(answer) + "\n")
    sys.__stdout__.flush()
"""


class Console:
    """Python with Django set up against the portal's database, like `portal.shell`, but started
    once: each `portal.shell` costs most of a second, a snippet here a few milliseconds."""

    def __init__(self, portal, log_path):
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in close)
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "shell", "--no-imports", "-c", CONSOLE_LOOP],
            cwd=ROOT,
            env=portal.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def run(self, code):
        """What `code` printed; its traceback as an AssertionError if it failed."""
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the console stopped: {self.log.name}"
        answer = json.loads(line)
        assert "error" not in answer, answer["error"]
        return answer["output"]

    def json(self, code):
        """The value of the JSON that `code` printed."""
        return json.loads(self.run(code))

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# The demo people as tenantlink/demo.py describes them (Contoso Ltd with a valid licence, no
# integrations), nothing left over from another story (paused sign-ins, flows waiting for
# Microsoft, declined offers, Microsoft's cached documents and keys, audit events), and
# Contoso Ltd's integration of the Contoso tenant active: as if Ada had approved it earlier.
STAGE = f"""
from django.utils import timezone
from tenantlink.accounts.models import Throttle
from tenantlink.audit.models import AuditEvent
from tenantlink.companies.models import Company
from tenantlink.demo import seed
from tenantlink.sso.models import CachedDocument, DeclinedOffer, Integration, PendingAuthorization
seed()
Throttle.objects.all().delete()
PendingAuthorization.objects.all().delete()
DeclinedOffer.objects.all().delete()
CachedDocument.objects.all().delete()
AuditEvent.objects.all().delete()
integration = Integration.objects.create(
    company=Company.objects.get(name="Contoso Ltd"), tenant_id="{CONTOSO}", display_name="Contoso",
    status="active", consent_completed_at=timezone.now(), last_verified_at=timezone.now(),
)
print(integration.pk)
"""

# Ben connected his Microsoft account earlier (the way there is a story of its own).
CONNECT_BEN = f"""
from tenantlink.accounts.models import User
from tenantlink.sso.models import Connection, Integration
Connection.objects.create(
    user=User.objects.get(username="ben"), integration=Integration.objects.get(tenant_id="{CONTOSO}"),
    tid="{CONTOSO}", oid="{BEN_AT_MICROSOFT.oid}", display_name="Ben Berg", username="{BEN_AT_MICROSOFT.upn}",
)
"""

CONNECTIONS = """
import json
from tenantlink.sso.models import Connection
print(json.dumps(list(Connection.objects.order_by("id").values_list("user__username", "tid", "oid")), default=str))
"""

LAST_EVENT = """
import json
from tenantlink.audit.models import AuditEvent
event = AuditEvent.objects.filter(action="{action}").order_by("-id").first()
print(json.dumps(event and {{"outcome": event.outcome, "target": event.target_label, "details": event.details}}))
"""


def connections(console):
    """Who is connected to which Microsoft identity: [username, tid, oid] each."""
    return console.json(CONNECTIONS)


def last_event(console, action):
    """The latest audit event of `action` in this story (None if there is none)."""
    return console.json(LAST_EVENT.format(action=action))


# --- People ----------------------------------------------------------------------------------------


class Authenticator:
    """The people's authenticator apps. The portal accepts a code once, so someone who signs in
    again in the same half minute uses the next time-step's code, which the portal accepts as
    clock drift; a third sign-in in the same half minute waits for the phone."""

    def __init__(self):
        self.last_step = {}

    def code(self, person):
        now = int(time.time()) // 30
        step = max(self.last_step.get(person.username, 0) + 1, now)
        while step > now + 1:
            time.sleep(1)
            now = int(time.time()) // 30
        self.last_step[person.username] = step
        return pyotp.TOTP(person.totp_seed).generate_otp(step)


class Mailbox:
    """The messages the portal sent (as files) since this was made."""

    def __init__(self, portal):
        self.folder = portal.mailbox
        self.seen = set(self.folder.iterdir())

    def new_messages(self, to):
        # The file backend writes one file per sent message here, messages divided by a line of dashes.
        found = []
        for path in sorted(set(self.folder.iterdir()) - self.seen):
            found += [m for m in path.read_text().split("\n" + "-" * 79 + "\n") if f"\nTo: {to}\n" in m]
        return found


# --- A browser, scripted over HTTP ------------------------------------------------------------------


def messages_on(response):
    """The messages shown at the top of a portal page, as a person reads them."""
    box = re.search(r'<ul class="messages"[^>]*>(.*?)</ul>', response.text, re.DOTALL)
    items = re.findall(r"<li[^>]*>(.*?)</li>", box.group(1), re.DOTALL) if box else []
    return [html.unescape(re.sub(r"<[^>]+>|\s+", " ", item)).strip() for item in items]


class Visitor:
    """One person's browser: a cookie jar for the portal and Microsoft, redirects followed one at
    a time so that Microsoft's answer to the portal (the callback) can be held and sent later."""

    def __init__(self, portal):
        self.portal = portal
        self.callback = f"{portal.url}/sso/callback/"
        self.http = httpx.Client(timeout=30, follow_redirects=False)

    def close(self):
        self.http.close()

    def follow(self, response, hold_callback=False):
        """Follow redirects; with `hold_callback`, stop before the portal's callback and return
        its address instead."""
        while response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if hold_callback and target.startswith(self.callback):
                return target
            response = self.http.get(target)
        return response

    def get(self, path, hold_callback=False):
        return self.follow(self.http.get(urljoin(self.portal.url, path)), hold_callback)

    def post(self, path, hold_callback=False, **data):
        """Submit a form of the portal's (with the CSRF token that the page would carry)."""
        if "csrftoken" not in self.http.cookies:
            self.http.get(f"{self.portal.url}/signin/")
        data["csrfmiddlewaretoken"] = self.http.cookies["csrftoken"]
        return self.follow(self.http.post(urljoin(self.portal.url, path), data=data), hold_callback)

    def is_signed_in(self):
        answer = self.http.get(f"{self.portal.url}/portal/")
        if answer.status_code == 200:
            return True
        assert answer.is_redirect and answer.headers["location"].startswith("/signin/"), answer
        return False

    def sign_in_with_password(self, person, authenticator):
        """Username, password and a code from the app; the page shown after it (the portal, or
        the offer to sign in with Microsoft)."""
        self.post("/signin/", username=person.username, password=person.password)
        page = self.post("/signin/verify/", code=authenticator.code(person))
        assert page.url.path in ("/portal/", "/sso/offer/"), f"{person.username} not signed in: {page.url}"
        return page

    def sign_out(self):
        return self.post("/signout/")

    def at_microsoft(self, page, account):
        """On Microsoft's sign-in page: sign in as `account` and accept the permissions if asked.
        The address Microsoft sends the browser back to, not yet visited. (Someone still signed in
        at Microsoft in this browser is sent back at once: `page` is that address already.)"""
        if isinstance(page, str):
            return page
        if 'name="password"' in page.text:
            page = self.http.post(
                urljoin(str(page.url), _form_action(page, "/login")),
                data={"ctx": _ctx(page), "username": account.upn, "password": MICROSOFT_PASSWORD},
            )
        if page.status_code == 200 and "Permissions requested" in page.text:
            page = self.http.post(
                urljoin(str(page.url), _form_action(page, "/consent/accept")), data={"ctx": _ctx(page)}
            )
        answer = self.follow(page, hold_callback=True)
        assert isinstance(answer, str), f"Microsoft did not send the browser back: {answer.url}\n{answer.text[:800]}"
        return answer

    def microsoft_signin(self, account, hold=False):
        """The sign-in page's "Sign in with Microsoft", as `account` at Microsoft; the page the
        portal shows then (or, with `hold`, the callback address, not yet visited)."""
        self.get("/signin/")
        callback = self.at_microsoft(self.post("/sso/signin/", hold_callback=True), account)
        return callback if hold else self.get(callback)

    def connect(self, account, hold=False, next_url="/portal/"):
        """Choose "Enable" (signed in) and connect `account`; the page shown afterwards (or, with
        `hold`, the callback address)."""
        callback = self.at_microsoft(self.post("/sso/connect/", hold_callback=True, next=next_url), account)
        return callback if hold else self.get(callback)


def _ctx(page):
    return re.search(r'name="ctx" value="([^"]+)"', page.text).group(1)


def _form_action(page, ending):
    found = re.search(rf'action="([^"]*{re.escape(ending)})"', page.text)
    assert found, f"not the Microsoft page expected ({ending}): {page.url}\n{page.text[:800]}"
    return html.unescape(found.group(1))


def admin_consent_at_microsoft(emulator, portal, tenant, admin, scope="openid profile email"):
    """A Microsoft administrator approves the portal for the whole `tenant` on Microsoft's pages
    (the portal's own part of it is the set-up story's); with `scope`
    https://graph.microsoft.com/.default, the Graph application permissions too."""
    with httpx.Client(base_url=emulator, timeout=10) as browser:
        page = browser.get(
            f"/{tenant}/v2.0/adminconsent",
            params={
                "client_id": portal.env["ENTRA_CLIENT_ID"],
                "redirect_uri": f"{portal.url}/sso/consent/callback/",
                "scope": scope,
                "state": "approved-outside-the-portal",
            },
        )
        page = browser.post(
            _form_action(page, "/login"),
            data={"ctx": _ctx(page), "username": admin.upn, "password": MICROSOFT_PASSWORD},
        )
        answer = browser.post(_form_action(page, "/consent/accept"), data={"ctx": _ctx(page)})
        assert "admin_consent=True" in answer.headers.get("location", ""), answer.text[:500]


def at_once(*actions):
    """Run the actions at the same moment, each in a thread of its own; their results in order."""
    start = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        start.wait()
        try:
            results[index] = action()
        except Exception as error:  # noqa: BLE001 (handed to the test below)
            results[index] = error

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
