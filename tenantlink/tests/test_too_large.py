"""A form past Django's limits (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FIELDS,
DATA_UPLOAD_MAX_NUMBER_FILES) is refused before any view reads it: the 400 page says that the
form was too large and that nothing was saved, not that the request could not be understood."""

import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tenantlink.accounts.models import User

TOO_LARGE = "The form held too much to be sent, so nothing was saved. Go back and try again with less."


def heading(response):
    return re.search(r"<h1>(.*?)</h1>", response.content.decode()).group(1)


def assert_too_large(response):
    assert response.status_code == 400
    assert heading(response) == "The form was too large"
    assert TOO_LARGE in response.content.decode()
    assert "could not be understood" not in response.content.decode()


def test_a_form_past_the_size_limit_says_so_and_saves_nothing(member_client, member, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = member_client.post("/profile/settings/", {"language": "sv", "time_zone": "", "notes": "x" * 2000})

    assert_too_large(response)
    member.refresh_from_db()
    assert member.language == ""


def test_a_form_with_too_many_fields_says_so(member_client, member, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {"language": "sv", "time_zone": "", **{f"field{n}": "x" for n in range(20)}}

    assert_too_large(member_client.post("/profile/settings/", fields))
    member.refresh_from_db()
    assert member.language == ""


def test_a_form_with_too_many_files_says_so(member_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"f{n}.txt", b"x") for n in range(3)]

    assert_too_large(member_client.post("/profile/settings/", {"language": "sv", "attachment": files}))


def test_a_visitor_gets_the_same_page_with_the_csrf_check_on(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    browser = Client(enforce_csrf_checks=True)

    assert_too_large(browser.post("/signin/", {"username": "bob", "password": "x" * 2000}))
    assert not User.objects.exists()


def test_other_bad_requests_keep_their_message(client):
    response = client.get("/health/live/", HTTP_HOST="portal.evil.example")

    assert response.status_code == 400
    assert heading(response) == "Bad request"
    assert "The request could not be understood." in response.content.decode()
