"""Steps shared by the test modules of the company's user pages (test_company_user_*.py): their
forms, the page that asks before it acts, an invitation sent and its link, and enrolment."""

import re

import pyotp

from tenantlink.accounts.models import TOTPDevice, User
from tenantlink.audit.models import AuditEvent

INITIAL_PASSWORD = "copper kettle on the stove"


def text(response):
    return response.content.decode()


def new_user_form(**fields):
    form = {"username": "carol", "display_name": "Carol Jones", "email": "carol@example.com", "role": User.Role.MEMBER}
    form.update(fields)
    return form


def audited(action, target):
    return AuditEvent.objects.get(action=action, target_user=target)


def confirmation(response):
    """The form of a page that asks before it acts: it sends itself back with a POST."""
    return re.search(r'<form method="post" class="actions">(.*?)</form>', text(response), re.S).group(1)


def enrol_through_the_page(browser):
    """Do what the person does on the enrolment page: type the key into an app, enter its code."""
    page = browser.get("/signin/enrol/")
    assert page.status_code == 200
    key = re.search(r'id="manual-key">([A-Z2-7 ]+)<', text(page)).group(1).replace(" ", "")
    code = pyotp.TOTP(key).generate_otp(TOTPDevice.current_step())
    response = browser.post("/signin/enrol/", {"code": code}, follow=True)
    assert response.status_code == 200 and "Your recovery codes" in text(response)


def invite_carol(admin_client):
    response = admin_client.post("/company/users/new/", new_user_form(how="invite"))
    assert response.status_code == 302
    return User.objects.get(username="carol")


def invitation_path(message):
    return re.search(r"https?://[^/\s]+(/invitation/[^/\s]+/[^/\s]+/)", message.body).group(1)
