"""The portal and the emulator as processes, spoken to over plain HTTP."""

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_the_health_check_reports_ok_when_the_database_answers(portal):
    response = httpx.get(f"{portal.url}/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    # A load balancer must never be answered from a cache.
    assert "no-cache" in response.headers["cache-control"]


def test_a_form_posted_without_its_csrf_token_is_refused_with_a_friendly_page(portal):
    response = httpx.post(f"{portal.url}/signin/", data={"username": "ben", "password": "ben-demo-password"})

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "The form has expired" in response.text
    assert "Go back, reload the page and try again." in response.text
    # Django's own page names the mechanism and the reason; ours shows no internals.
    assert "CSRF" not in response.text


def test_the_emulator_publishes_the_discovery_document_the_portal_is_configured_with(emulator):
    response = httpx.get(f"{emulator}/organizations/v2.0/.well-known/openid-configuration")

    document = response.json()
    assert document["authorization_endpoint"] == f"{emulator}/organizations/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{emulator}/organizations/oauth2/v2.0/token"
