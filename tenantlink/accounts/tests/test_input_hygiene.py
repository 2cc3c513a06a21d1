"""Names that cannot be seen or read: a display name of invisible characters looks blank, one with
an invisible character inside it looks like somebody else's, and one that came in as bytes that
were not UTF-8 shows "�". Each is refused with a message that says why, wherever a name is typed."""

import io

import pytest
from django.core.management import CommandError, call_command

from tenantlink.accounts.models import User
from tenantlink.accounts.tests.company_user_helpers import new_user_form, text
from tenantlink.companies.models import Company
from tenantlink.sso.tests.conftest import fake_microsoft  # noqa: F401 (a fixture)

INVISIBLE = "Use no invisible characters (such as zero-width spaces)."
NOTHING_VISIBLE = "Enter at least one visible character: letters, digits or signs."
UNREADABLE = "This contains characters that could not be read (shown as �). Type them again."


def create_carol(admin_client, display_name):
    return admin_client.post("/company/users/new/", new_user_form(how="invite", display_name=display_name))


def name_errors(response):
    return response.context["form"].errors.get("display_name", [])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("\u200b", INVISIBLE),  # zero-width space
        ("\ufeff", INVISIBLE),  # byte order mark
        ("Ada\u200bAdmin", INVISIBLE),  # looks like "AdaAdmin"
        ("Ada\u2060Admin", INVISIBLE),  # word joiner
        ("Car\u00adol", INVISIBLE),  # soft hyphen
        ("\u3164", NOTHING_VISIBLE),  # Hangul filler: a letter that draws as nothing
        ("\u2800\u2800", NOTHING_VISIBLE),  # blank Braille pattern
        ("\u0301\u0308", NOTHING_VISIBLE),  # accents with no letter to sit on
        ("\u200d", NOTHING_VISIBLE),  # a lone joiner
    ],
)
def test_a_name_that_cannot_be_seen_is_refused(admin_client, name, message):
    response = create_carol(admin_client, name)

    assert response.status_code == 200
    assert name_errors(response) == [message]
    assert message.replace("'", "&#x27;") in text(response)
    assert not User.objects.filter(username="carol").exists()


@pytest.mark.parametrize(
    "name",
    [
        "كارول 👩‍💻",  # Arabic and an emoji joined by U+200D
        "می\u200cخواهم",  # Persian with a zero-width non-joiner
        "क्\u200dष",  # Devanagari with a joiner
        "\u05d3\u05d5\u05d3 (IT)\u200f",  # Hebrew with a right-to-left mark
        "Zoë 🏳️‍🌈",  # a variation selector and a joiner inside an emoji
        "李小龍",
    ],
)
def test_names_in_every_script_still_pass(admin_client, name):
    response = create_carol(admin_client, name)

    assert response.status_code == 302, name_errors(response)
    assert User.objects.get(username="carol").display_name == name


@pytest.mark.parametrize("raw", ["X%ED%A0%80", "X%FF", "X%C0%80"])
def test_a_name_sent_as_bytes_that_are_not_utf8_is_refused_not_saved_as_replacement_characters(admin_client, raw):
    body = f"username=carol&display_name={raw}&email=carol%40example.com&role=member&how=invite"

    response = admin_client.post("/company/users/new/", body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert name_errors(response) == [UNREADABLE]
    assert not User.objects.filter(username="carol").exists()


def test_a_pasted_name_with_a_replacement_character_is_refused(admin_client):
    response = create_carol(admin_client, "Jos\ufffd Garc\ufffda")

    assert name_errors(response) == [UNREADABLE]


def test_an_integration_name_of_invisible_characters_is_refused(admin_client, fake_microsoft):  # noqa: F811
    response = admin_client.post("/company/sso/add/", {"tenant": "", "display_name": "\u200b\u200b"})

    assert response.status_code == 200
    assert response.context["form"].errors["display_name"] == [INVISIBLE]


@pytest.mark.parametrize(("name", "message"), [("\ufeff", INVISIBLE), ("\u3164", NOTHING_VISIBLE)])
def test_a_company_name_that_cannot_be_seen_is_refused_on_the_command_line(name, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_company", name, stdout=io.StringIO())
    assert not Company.objects.exists()
