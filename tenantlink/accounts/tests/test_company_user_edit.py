"""Company administrators change a user of their company: display name, email address and role
(a typo in an invitation's address, a new name after marriage, a promotion). Never the username,
never their own role, never the company's last administrator's; one audit event per change."""

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client

from tenantlink.accounts.models import LAST_ADMINISTRATOR, User
from tenantlink.accounts.tests.company_user_helpers import audited, invitation_path, invite_carol, text
from tenantlink.accounts.views import company as company_views
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.conftest import make_user, signed_in_browser


def edit_form(user, **fields):
    """The edit page's form as it comes, filled in with the user's stored details, then `fields`."""
    form = {"display_name": user.display_name, "email": user.email, "role": user.role}
    form.update(fields)
    return form


def edit(client, user, **fields):
    return client.post(f"/company/users/{user.pk}/edit/", edit_form(user, **fields))


def changes_recorded():
    return AuditEvent.objects.filter(action=Action.USER_CHANGED)


# Each field -------------------------------------------------------------------------------------


def test_the_users_page_leads_to_the_edit_page_which_names_the_username_as_fixed(admin_client, member):
    page = text(admin_client.get(f"/company/users/{member.pk}/"))
    assert f'href="/company/users/{member.pk}/edit/"' in page

    page = text(admin_client.get(f"/company/users/{member.pk}/edit/"))
    assert "Edit Bob" in page
    assert "<dd>bob</dd>" in page and "Usernames cannot be changed." in page
    assert 'name="username"' not in page and 'name="password"' not in page
    assert 'value="Bob"' in page and 'value="bob@example.com"' in page


def test_a_new_name_after_marriage_is_saved_and_recorded(admin_client, admin, member, contoso):
    response = edit(admin_client, member, display_name="Bob Smith-Jones")

    assert response.status_code == 302 and response.url == f"/company/users/{member.pk}/"
    page = text(admin_client.get(response.url))
    assert "The changes to Bob Smith-Jones have been saved." in page
    assert "<h1>Bob Smith-Jones</h1>" in page
    member.refresh_from_db()
    assert member.display_name == "Bob Smith-Jones" and member.username == "bob"

    event = audited(Action.USER_CHANGED, member)
    assert (event.actor, event.company, event.target_label) == (admin, contoso, "bob")
    assert event.details == {
        "fields": ["display_name"],
        "changes": {"display_name": {"from": "Bob", "to": "Bob Smith-Jones"}},
    }
    shown = text(admin_client.get(f"/company/audit/{event.pk}/"))
    assert "<dt>Changes</dt><dd>Display name: Bob → Bob Smith-Jones</dd>" in shown
    assert "Changed user" in shown


def test_a_new_email_address_is_saved_and_the_log_names_the_field_not_the_addresses(admin_client, member):
    edit(admin_client, member, email="bob.jones@example.com")

    member.refresh_from_db()
    assert member.email == "bob.jones@example.com"
    event = audited(Action.USER_CHANGED, member)
    assert event.details == {"fields": ["email"]}  # personal data: named, not kept
    shown = text(admin_client.get(f"/company/audit/{event.pk}/"))
    assert "<dt>Changed fields</dt><dd>Email address</dd>" in shown
    assert "bob.jones@example.com" not in shown and "bob@example.com" not in shown


def test_several_fields_changed_at_once_are_one_event(admin_client, member):
    edit(admin_client, member, display_name="Robert", email="robert@example.com", role=User.Role.ADMINISTRATOR)

    [event] = changes_recorded()
    assert event.details == {
        "fields": ["display_name", "email", "role"],
        "changes": {
            "display_name": {"from": "Bob", "to": "Robert"},
            "role": {"from": "member", "to": "administrator"},
        },
    }
    shown = text(admin_client.get(f"/company/audit/{event.pk}/"))
    # (In either order: PostgreSQL's jsonb keeps an object's keys in an order of its own.)
    changed = re.search(r"<dt>Changes</dt><dd>(.*?)</dd>", shown).group(1).split("; ")
    assert sorted(changed) == ["Display name: Bob → Robert", "Role: Member → Administrator"]
    assert "<dd>Display name, Email address, Role</dd>" in shown


def test_a_username_sent_with_the_form_is_ignored(admin_client, member):
    edit(admin_client, member, username="robert", display_name="Robert")

    member.refresh_from_db()
    assert member.username == "bob" and member.display_name == "Robert"


# Roles ------------------------------------------------------------------------------------------


def test_a_member_made_administrator_reaches_the_administrators_pages_at_once(admin_client, member):
    bobs_browser = signed_in_browser(member)
    assert bobs_browser.get("/company/users/").status_code == 403

    edit(admin_client, member, role=User.Role.ADMINISTRATOR)

    assert bobs_browser.get("/company/users/").status_code == 200
    assert audited(Action.USER_CHANGED, member).details["changes"] == {
        "role": {"from": "member", "to": "administrator"}
    }


def test_a_demoted_administrator_loses_the_administrators_pages_at_the_next_request(admin_client, contoso):
    dora = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    doras_browser = signed_in_browser(dora)
    assert doras_browser.get("/company/users/").status_code == 200

    edit(admin_client, dora, role=User.Role.MEMBER)

    for page in ("/company/users/", f"/company/users/{dora.pk}/edit/", "/company/audit/", "/company/sso/"):
        assert doras_browser.get(page).status_code == 403, page
    assert doras_browser.post(f"/company/users/{dora.pk}/edit/", edit_form(dora)).status_code == 403
    # Still signed in, as a member: her own pages work.
    assert doras_browser.get("/portal/").status_code == 200
    assert doras_browser.get("/profile/").status_code == 200


def test_an_administrator_cannot_change_their_own_role(admin_client, admin):
    page = text(admin_client.get(f"/company/users/{admin.pk}/edit/"))
    assert "You cannot change your own role. Another administrator can." in page
    assert '<select name="role" disabled aria-describedby="id_role_helptext"' in page

    response = edit(admin_client, admin, role=User.Role.MEMBER)

    assert response.status_code == 302
    assert "Nothing changed: Alice already had these details." in text(admin_client.get(response.url))
    admin.refresh_from_db()
    assert admin.role == User.Role.ADMINISTRATOR
    assert not changes_recorded().exists()
    assert admin_client.get("/company/users/").status_code == 200


def test_an_administrator_may_change_their_own_name_and_address(admin_client, admin):
    edit(admin_client, admin, display_name="Alice Jones", email="alice.jones@example.com", role=User.Role.MEMBER)

    admin.refresh_from_db()
    assert (admin.display_name, admin.email, admin.role) == (
        "Alice Jones",
        "alice.jones@example.com",
        User.Role.ADMINISTRATOR,
    )
    assert audited(Action.USER_CHANGED, admin).details["fields"] == ["display_name", "email"]


def test_the_last_administrator_is_not_made_a_member(admin, contoso):
    make_user("dora", contoso, User.Role.ADMINISTRATOR, is_active=False)  # deactivated: does not count

    with pytest.raises(ValidationError) as refused:
        admin.change_details(role=User.Role.MEMBER)

    assert refused.value.message_dict == {"role": [str(LAST_ADMINISTRATOR)]}
    admin.refresh_from_db()
    assert admin.role == User.Role.ADMINISTRATOR


def test_the_last_administrators_refusal_is_shown_beside_the_role(admin_client, contoso, monkeypatch):
    """Through the page alone the acting administrator is always another one (her own role is not
    hers to change), so the rule is reached here with the others hidden from it: the page says
    why beside the role, keeps what was typed, and changes nothing."""
    dora = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    monkeypatch.setattr(User, "_other_administrators", lambda user: User.objects.none())

    response = edit(admin_client, dora, display_name="Dora Smith", role=User.Role.MEMBER)

    assert response.status_code == 200
    assert response.context["form"].errors["role"] == [str(LAST_ADMINISTRATOR)]
    assert "This is the company&#x27;s last administrator" in text(response)
    assert 'value="Dora Smith"' in text(response)
    dora.refresh_from_db()
    assert (dora.display_name, dora.role) == ("Dora", User.Role.ADMINISTRATOR)
    assert not changes_recorded().exists()


def test_two_administrators_making_each_other_members_at_once_leave_one_administrator(
    admin_client, admin, contoso, monkeypatch
):
    """Dora's request has passed the administrator check when Alice's change of Dora lands (the
    moment is taken from inside Dora's request); Dora's then changes nothing."""
    dora = make_user("dora", contoso, User.Role.ADMINISTRATOR)
    doras_browser = signed_in_browser(dora)
    form = company_views.CompanyUserEditForm

    def alice_demotes_dora_meanwhile(administrator, *args, **kwargs):
        if administrator == dora:
            monkeypatch.setattr(company_views, "CompanyUserEditForm", form)
            assert edit(admin_client, dora, role=User.Role.MEMBER).status_code == 302
        return form(administrator, *args, **kwargs)

    monkeypatch.setattr(company_views, "CompanyUserEditForm", alice_demotes_dora_meanwhile)

    response = edit(doras_browser, admin, role=User.Role.MEMBER)

    assert response.status_code == 403
    admin.refresh_from_db()
    dora.refresh_from_db()
    assert admin.is_company_admin and not dora.is_company_admin
    assert [event.target_user for event in changes_recorded()] == [dora]


# Who may ---------------------------------------------------------------------------------------


def test_another_companys_user_is_not_found(admin_client, outsider):
    assert admin_client.get(f"/company/users/{outsider.pk}/edit/").status_code == 404
    assert edit(admin_client, outsider, display_name="Hacked", role=User.Role.MEMBER).status_code == 404
    outsider.refresh_from_db()
    assert (outsider.display_name, outsider.role) == ("Olga", User.Role.ADMINISTRATOR)


def test_an_operator_staff_account_in_the_company_is_not_found(admin_client, contoso):
    operator = make_user("olivia", company=contoso, is_staff=True, is_superuser=True)

    assert admin_client.get(f"/company/users/{operator.pk}/edit/").status_code == 404
    assert edit(admin_client, operator, display_name="Hacked").status_code == 404
    operator.refresh_from_db()
    assert operator.display_name == "Olivia"


def test_a_member_cannot_reach_the_page(member_client, admin):
    assert member_client.get(f"/company/users/{admin.pk}/edit/").status_code == 403
    assert edit(member_client, admin, role=User.Role.MEMBER).status_code == 403
    admin.refresh_from_db()
    assert admin.role == User.Role.ADMINISTRATOR


def test_a_visitor_is_sent_to_sign_in(client, member):
    response = client.get(f"/company/users/{member.pk}/edit/")
    assert response.status_code == 302 and response.url.startswith("/signin/")


# What is refused, and what is left as it is --------------------------------------------------------


def test_the_same_details_sent_again_change_nothing_and_are_not_recorded(admin_client, member):
    response = edit(admin_client, member, display_name="  Bob ")  # spaces around are not kept

    assert response.status_code == 302
    assert "Nothing changed: Bob already had these details." in text(admin_client.get(response.url))
    assert not changes_recorded().exists()


def test_invalid_details_are_refused_with_the_reasons_and_kept_to_correct(admin_client, member):
    response = edit(admin_client, member, display_name="", email="bob at example")

    assert response.status_code == 200
    page = text(response)
    assert "Correct the following and send the form again:" in page
    assert "Display name: This field is required." in page
    assert "Email address: Enter a valid email address." in page
    assert 'value="bob at example"' in page
    assert "<h1>Edit Bob</h1>" in page
    member.refresh_from_db()
    assert (member.display_name, member.email) == ("Bob", "bob@example.com")
    assert not changes_recorded().exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Bob\u202emoc.elgoog",
            "Use no control characters (such as line breaks) or characters that turn the direction",
        ),
        ("Bob\u200bSmith", "Use no invisible characters (such as zero-width spaces)."),
        ("B" * 201, "Ensure this value has at most 200 characters (it has 201)."),
    ],
)
def test_a_name_is_held_to_the_new_user_forms_rules(admin_client, member, name, message):
    response = edit(admin_client, member, display_name=name)

    assert response.status_code == 200
    assert message in response.context["form"].errors["display_name"][0]
    assert response.context["form"]["display_name"].value() == name  # kept, to correct
    member.refresh_from_db()
    assert member.display_name == "Bob"


def test_a_role_that_is_none_of_the_choices_is_refused(admin_client, member):
    response = edit(admin_client, member, role="owner")

    assert response.status_code == 200
    assert "Select a valid choice." in response.context["form"].errors["role"][0]


def test_a_user_who_signs_in_with_a_password_may_have_no_email_address(admin_client, member):
    edit(admin_client, member, email="")

    member.refresh_from_db()
    assert member.email == ""


def the_page(client, user):
    """The edit page's form as a browser sends it: every field as shown, and what it showed."""
    page = text(client.get(f"/company/users/{user.pk}/edit/"))
    form = dict(re.findall(r'<input type="(?:text|email|hidden)" name="([\w-]+)" value="([^"]*)"', page))
    form.update(re.findall(r'<select name="([\w-]+)".*?<option value="(\w+)" selected>', page, re.S))
    del form["csrfmiddlewaretoken"]
    return form


def test_two_tabs_each_save_what_they_changed_and_undo_nothing_of_the_other(admin_client, member):
    first_tab, second_tab = the_page(admin_client, member), the_page(admin_client, member)
    assert first_tab["initial-email"] == "bob@example.com"  # what the page showed goes back with it

    admin_client.post(f"/company/users/{member.pk}/edit/", {**first_tab, "email": "bob.smith@example.com"})
    response = admin_client.post(f"/company/users/{member.pk}/edit/", {**second_tab, "display_name": "Robert"})

    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.display_name, member.email) == ("Robert", "bob.smith@example.com")
    assert changes_recorded().first().details == {
        "fields": ["display_name"],
        "changes": {"display_name": {"from": "Bob", "to": "Robert"}},
    }


def test_two_tabs_changing_the_same_field_the_later_one_wins_and_the_log_says_from_what(admin_client, member):
    first_tab, second_tab = the_page(admin_client, member), the_page(admin_client, member)

    admin_client.post(f"/company/users/{member.pk}/edit/", {**first_tab, "display_name": "Robert"})
    admin_client.post(f"/company/users/{member.pk}/edit/", {**second_tab, "display_name": "Bobby"})

    member.refresh_from_db()
    assert member.display_name == "Bobby"
    assert changes_recorded().first().details["changes"] == {"display_name": {"from": "Robert", "to": "Bobby"}}


def test_a_user_deleted_meanwhile_is_not_found(admin_client, member):
    form = edit_form(member, display_name="Robert")
    member.delete()

    assert admin_client.post(f"/company/users/{member.pk}/edit/", form).status_code == 404
    assert not changes_recorded().exists()


def test_a_deactivation_meanwhile_stays(admin_client, member):
    form = edit_form(member, display_name="Robert")
    member.deactivate()

    admin_client.post(f"/company/users/{member.pk}/edit/", form)

    member.refresh_from_db()
    assert member.display_name == "Robert" and not member.is_active
    assert member.session_generation == 1  # not written back as it was read


# An invitation not accepted yet -----------------------------------------------------------------


def test_a_typo_in_an_invitations_address_is_fixed_and_the_invitation_sent_to_the_new_one(admin_client):
    carol = invite_carol(admin_client)  # sent to carol@example.com: a typo for carol@example.org
    old_link = invitation_path(mail.outbox[0])
    page = text(admin_client.get(f"/company/users/{carol.pk}/edit/"))
    assert "They have not accepted their invitation yet. A new address ends the links sent to the old one" in page
    assert "“Send invitation again” on their page then sends one to the new address." in page

    response = edit(admin_client, carol, email="carol@example.org")

    page = text(admin_client.get(response.url))
    assert "The changes to Carol Jones have been saved." in page
    assert "The invitation links sent to the old address no longer work." in page
    assert "“Send invitation again” sends a new one to carol@example.org." in page
    assert len(mail.outbox) == 1  # nothing sent until asked
    assert Client().get(old_link, follow=True).status_code == 400  # whoever has the old address: ended

    admin_client.post(f"/company/users/{carol.pk}/invite/")

    assert mail.outbox[-1].to == ["carol@example.org"]
    carols = Client()
    assert "Choose" in text(carols.get(invitation_path(mail.outbox[-1]), follow=True))
    assert carols.get(invitation_path(mail.outbox[-1]), follow=True).status_code == 200


def test_an_invited_users_address_cannot_be_removed(admin_client):
    carol = invite_carol(admin_client)

    response = edit(admin_client, carol, email="")

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["An invitation needs an email address."]
    carol.refresh_from_db()
    assert carol.email == "carol@example.com"


def test_a_refused_form_starts_at_the_first_field_to_correct(admin_client, member):
    page = text(edit(admin_client, member, email="bob at example"))

    assert 'name="email" value="bob at example" maxlength="254" aria-invalid="true"' in page
    assert 'aria-describedby="id_email_error" autofocus id="id_email">' in page
    assert '<input type="text" name="display_name" value="Bob" maxlength="200" required id="id_display_name">' in page
    assert '<a href="#id_email">Email address: Enter a valid email address.</a>' in page


def test_an_address_changed_only_in_case_is_the_same_address(admin_client, member):
    form = edit_form(member, email="BOB@example.com")
    page = text(admin_client.post(f"/company/users/{member.pk}/edit/", form, follow=True))

    assert "Nothing changed: Bob already had these details." in page
    member.refresh_from_db()
    assert member.email == "bob@example.com" and not changes_recorded().exists()
