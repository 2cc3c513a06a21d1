"""Company administrators see their own company's users: the list, its search and its pages.
Members may not open the company's user pages, and administrators of another company cannot
even see that the users exist."""

import re

from django.core import mail
from django.test import Client
from django.utils import timezone

from tenantlink.accounts.models import RecoveryCode, TOTPDevice, User
from tenantlink.accounts.tests.company_user_helpers import (
    INITIAL_PASSWORD,
    new_user_form,
    text,
)
from tenantlink.audit.models import AuditEvent
from tenantlink.conftest import make_user, sign_in


def user_links(response):
    """The users a page links to, by id, in the order shown."""
    return [int(pk) for pk in re.findall(r'href="/company/users/(\d+)/"', text(response))]


# The list ------------------------------------------------------------------------------------


def test_the_list_shows_the_administrators_own_company_only(admin_client, admin, member, outsider):
    response = admin_client.get("/company/users/")

    assert response.status_code == 200
    assert "Contoso Ltd" in text(response)
    assert user_links(response) == [admin.pk, member.pk]  # alice, bob; never olga
    assert "Olga" not in text(response) and "Northwind" not in text(response)


def test_an_administrator_cannot_see_another_companys_users(client, admin, member, outsider):
    sign_in(client, outsider)

    response = client.get("/company/users/")
    assert user_links(response) == [outsider.pk]
    assert "Alice" not in text(response) and "Bob" not in text(response)

    assert client.get(f"/company/users/{member.pk}/").status_code == 404
    assert client.get(f"/company/users/{admin.pk}/").status_code == 404


def test_a_search_for_a_whole_long_email_address_is_kept_as_typed(admin_client, contoso):
    address = "firstname.middlename.lastname." * 7 + "consultant@subsidiary.example.com"  # 243 characters
    User.objects.filter(pk=make_user("longmail", contoso).pk).update(email=address)

    page = text(admin_client.get("/company/users/", {"q": address}))

    assert 'maxlength="254"' in page and f'value="{address}"' in page
    assert "<td>longmail</td>" in page


def test_the_list_can_be_searched_by_name_username_or_email(admin_client, admin, member, outsider, contoso):
    dmitri = User.objects.create_user(
        "dmitri", company=contoso, display_name="Dmitri Petrov", email="d.p@fabrikam.example"
    )

    by_name = admin_client.get("/company/users/", {"q": "petrov"})
    by_username = admin_client.get("/company/users/", {"q": "DMITRI"})
    by_email = admin_client.get("/company/users/", {"q": "fabrikam.example"})
    for response in (by_name, by_username, by_email):
        assert user_links(response) == [dmitri.pk]

    assert user_links(admin_client.get("/company/users/", {"q": "example.com"})) == [admin.pk, member.pk]

    other_company = admin_client.get("/company/users/", {"q": "olga"})
    assert user_links(other_company) == []
    assert "No user matches your search." in text(other_company)


def test_names_are_shown_as_text_not_as_markup(admin_client, contoso):
    User.objects.create_user("eve", company=contoso, display_name="<script>alert(1)</script>")

    response = admin_client.get("/company/users/", {"q": "<script>"})

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(response)
    assert "<script>" not in text(response)


def test_the_list_and_each_users_page_give_the_same_status(admin_client, member, contoso):
    invited = make_user("ivy", contoso, enrolled=False)
    invited.set_unusable_password()
    invited.save()
    not_enrolled = make_user("nat", contoso, enrolled=False)
    gone = make_user("gus", contoso, is_active=False)
    rows = dict(
        re.findall(
            r'href="/company/users/(\d+)/".*?<span class="badge \w+">([^<]+)</span>',
            text(admin_client.get("/company/users/")),
            re.S,
        )
    )

    for user, status in (
        (member, "Active"),
        (invited, "Invited"),
        (not_enrolled, "No second factor yet"),
        (gone, "Deactivated"),
    ):
        assert rows[str(user.pk)] == status
        page = text(admin_client.get(f"/company/users/{user.pk}/"))
        assert re.search(rf"<dt>Status</dt><dd><span class=\"badge \w+\">{status}</span>", page), status


def test_the_list_filters_by_status_and_role_and_counts_what_it_finds(admin_client, admin, member, contoso):
    invited = make_user("ivy", contoso, enrolled=False)
    invited.set_unusable_password()
    invited.save()
    not_enrolled = make_user("nat", contoso, enrolled=False)
    gone = make_user("gus", contoso, is_active=False)
    switched_off = make_user("pia", contoso)  # signed in with Microsoft only: password sign-in off
    switched_off.set_unusable_password()
    switched_off.last_login = timezone.now()
    switched_off.save()

    for status, people in (
        ("active", [admin, member]),
        ("invited", [invited]),
        ("no_second_factor", [not_enrolled]),
        ("password_off", [switched_off]),
        ("deactivated", [gone]),
    ):
        response = admin_client.get("/company/users/", {"status": status})
        assert sorted(user_links(response)) == sorted(person.pk for person in people), status
        assert f'<option value="{status}" selected>' in text(response)
        assert f"{len(people)} user{'s' if len(people) > 1 else ''}</p>" in text(response)

    administrators = admin_client.get("/company/users/", {"role": "administrator", "status": "active"})
    assert user_links(administrators) == [admin.pk] and "1 user</p>" in text(administrators)
    assert "6 users</p>" in text(admin_client.get("/company/users/"))
    # Values that are none of the choices filter nothing.
    assert "6 users</p>" in text(admin_client.get("/company/users/", {"status": "nonsense", "role": "owner"}))


def test_a_users_recent_activity_is_named_as_its_heading_says(admin_client, member):
    page = text(admin_client.get(f"/company/users/{member.pk}/"))

    assert "<h2>Recent activity</h2>" in page
    assert 'role="region" aria-label="Recent activity"' in page  # what a screen reader announces
    assert 'aria-label="Audit log"' in text(admin_client.get("/company/audit/"))


def test_thirty_users_fill_two_pages(admin_client, admin, contoso):
    for number in range(1, 30):  # with alice, thirty users
        User.objects.create_user(f"user{number:02}", company=contoso, display_name=f"User {number:02}")

    first = admin_client.get("/company/users/")
    assert len(user_links(first)) == 25
    assert "Page 1 of 2" in text(first)

    second = admin_client.get("/company/users/", {"page": 2})
    assert len(user_links(second)) == 5
    assert "Page 2 of 2" in text(second)
    assert set(user_links(first)).isdisjoint(user_links(second))

    # A search keeps its words from page to page.
    searched = admin_client.get("/company/users/", {"q": "user"})
    assert "Page 1 of 2" in text(searched)
    assert 'href="?q=user&amp;page=2"' in text(searched)
    assert len(user_links(admin_client.get("/company/users/", {"q": "user", "page": 2}))) == 4

    # A page number that is not one shows the first page.
    assert user_links(admin_client.get("/company/users/", {"page": "abc"})) == user_links(first)


# Who may do what ------------------------------------------------------------------------------


def test_a_member_is_refused_every_company_page(member_client, member, admin):
    pages = ["/company/users/", "/company/users/new/", f"/company/users/{admin.pk}/", f"/company/users/{member.pk}/"]
    for page in pages:
        response = member_client.get(page)
        assert response.status_code == 403, page
        assert "You do not have permission to open this page." in text(response)

    for action in ("deactivate", "reset-second-factor"):  # the pages that ask first, too
        assert member_client.get(f"/company/users/{admin.pk}/{action}/").status_code == 403, action
    for action in ("deactivate", "reactivate", "reset-second-factor", "invite"):
        assert member_client.post(f"/company/users/{admin.pk}/{action}/").status_code == 403
    response = member_client.post(
        "/company/users/new/", new_user_form(how="password", initial_password=INITIAL_PASSWORD)
    )
    assert response.status_code == 403

    admin.refresh_from_db()
    assert admin.is_active and TOTPDevice.objects.filter(user=admin).exists()
    assert not User.objects.filter(username="carol").exists()


def test_an_administrator_of_another_company_finds_nothing_of_contoso(client, outsider, admin, member):
    RecoveryCode.replace_for(member)
    sign_in(client, outsider)
    before = AuditEvent.objects.count()

    assert client.get(f"/company/users/{member.pk}/").status_code == 404
    for action in ("deactivate", "reset-second-factor"):  # the pages that ask first
        response = client.get(f"/company/users/{member.pk}/{action}/")
        assert response.status_code == 404, action
        assert "Bob" not in text(response)
    for action in ("deactivate", "reactivate", "reset-second-factor", "invite"):
        response = client.post(f"/company/users/{member.pk}/{action}/")
        assert response.status_code == 404, action
        assert "There is nothing here." in text(response)

    member.refresh_from_db()
    assert member.is_active
    assert TOTPDevice.objects.filter(user=member).exists() and RecoveryCode.remaining(member) == 10
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_the_company_pages_need_a_signed_in_administrator(client, member):
    response = client.get("/company/users/")
    assert response.status_code == 302 and response.url == "/signin/?next=/company/users/"

    response = client.post(f"/company/users/{member.pk}/deactivate/")
    assert response.status_code == 302 and response.url.startswith("/signin/")
    member.refresh_from_db()
    assert member.is_active


def test_actions_that_change_something_refuse_get(admin_client, member):
    # Deactivating and resetting answer a GET with the page that asks first (tests above).
    for action in ("reactivate", "invite"):
        assert admin_client.get(f"/company/users/{member.pk}/{action}/").status_code == 405, action

    member.refresh_from_db()
    assert member.is_active and TOTPDevice.objects.filter(user=member).exists()
    assert mail.outbox == []


def test_a_form_sent_without_its_security_token_gets_the_form_has_expired_page(admin_client, member):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies["sessionid"] = admin_client.cookies["sessionid"].value

    response = browser.post(f"/company/users/{member.pk}/deactivate/")
    assert response.status_code == 403
    assert "The form has expired" in text(response)
    member.refresh_from_db()
    assert member.is_active

    # The button on the page that asks first carries the token, and works.
    page = browser.get(f"/company/users/{member.pk}/deactivate/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    response = browser.post(f"/company/users/{member.pk}/deactivate/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_active
