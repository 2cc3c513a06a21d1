"""The email that tells a user their Microsoft connection was removed says who removed it, and
asks "was this you?" only when it was them."""

from django.core import mail

from tenantlink.accounts.models import User
from tenantlink.sso import flows
from tenantlink.sso.tests.microsoft_signin_helpers import connected

ASK_IF_IT_WAS_THEM = "If this was not you or you did not expect it, tell your company's administrator at once."
ASK_THE_ADMINISTRATOR = "If you did not expect this, ask your company's administrator about it."


def test_a_member_who_disconnects_himself_is_asked_to_report_it_if_it_was_not_him(
    member_client, member, contoso_integration
):
    connected(member, contoso_integration)

    member_client.post("/profile/microsoft/disconnect/")

    body = mail.outbox[-1].body
    assert ASK_IF_IT_WAS_THEM in body
    assert "This was done by" not in body


def test_a_member_disconnected_by_an_administrator_is_told_so_and_not_asked_if_it_was_him(
    admin_client, member, contoso_integration
):
    connected(member, contoso_integration)

    admin_client.post(f"/company/users/{member.pk}/microsoft/disconnect/")

    body = mail.outbox[-1].body
    assert "This was done by your company's administrator." in body
    assert ASK_THE_ADMINISTRATOR in body
    assert "If this was not you" not in body


def test_a_member_whose_connection_went_with_a_move_by_operator_staff_is_told_so(rf, member, contoso_integration):
    connection = connected(member, contoso_integration)
    request = rf.post("/staff/accounts/user/")
    request.user = User.objects.create_user("stella", "x" * 20, is_staff=True)

    flows.notify(request, member, "disconnected", connection)

    body = mail.outbox[-1].body
    assert "This was done by the operator staff of Tenantlink." in body
    assert ASK_THE_ADMINISTRATOR in body and "If this was not you" not in body


def test_a_member_disconnected_by_the_leaver_check_is_told_why(member, contoso_integration):
    connection = connected(member, contoso_integration)

    flows.notify(None, member, "disconnected", connection)  # a run of the check has no request

    body = mail.outbox[-1].body
    assert "This was done by the leaver check: Microsoft says that your Microsoft account was disabled" in body
    assert ASK_THE_ADMINISTRATOR in body and "If this was not you" not in body
