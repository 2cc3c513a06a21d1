"""Prometheus metrics at /metrics: only for a scraper with METRICS_TOKEN, and counts that move
when people sign in, Microsoft is called and pages are served."""

import httpx
import pytest
from django.test import Client
from prometheus_client import REGISTRY

from tenantlink.conftest import PASSWORD, code_for, sign_in
from tenantlink.sso import microsoft
from tenantlink.sso.tests.conftest import fake_microsoft  # noqa: F401 (a fixture)

TOKEN = "metrics-token-for-the-tests-0123456789"


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture
def scraper(settings):
    settings.METRICS_TOKEN = TOKEN
    return Client(headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.parametrize("path", ["/metrics", "/metrics/leavers"])
def test_without_a_token_configured_there_is_no_metrics_page(client, settings, path):
    settings.METRICS_TOKEN = ""
    assert client.get(path, headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("path", ["/metrics", "/metrics/leavers"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-of-some-length-000000", f"Basic {TOKEN}", TOKEN])
def test_the_page_refuses_a_missing_or_wrong_token(client, scraper, authorization, path):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert b"tenantlink_" not in response.content


def test_a_scraper_with_the_token_reads_the_metrics(scraper, member):
    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"# TYPE tenantlink_signins_total counter" in response.content


def test_sign_ins_are_counted_by_method_and_outcome(client, member):
    before = {
        key: value("tenantlink_signins_total", method=key[0], outcome=key[1])
        for key in [("password", "failure"), ("second_factor", "failure"), ("totp", "success")]
    }

    client.post("/signin/", {"username": member.username, "password": "not the password"})
    client.post("/signin/", {"username": member.username, "password": PASSWORD})
    client.post("/signin/verify/", {"code": "000000" if code_for(member) != "000000" else "111111"})
    sign_in(client, member)

    for (method, outcome), count in before.items():
        assert value("tenantlink_signins_total", method=method, outcome=outcome) == count + 1, (method, outcome)


def test_a_pause_after_repeated_failures_is_counted_as_a_lockout(client, member, settings):
    settings.THROTTLE_ACCOUNT_FAILURES = 2
    before = value("tenantlink_signin_lockouts_total", scope="account")
    for _ in range(3):  # the third attempt finds the limit used up
        client.post("/signin/", {"username": member.username, "password": "not the password"})
    assert value("tenantlink_signin_lockouts_total", scope="account") == before + 1


def test_calls_to_microsoft_are_timed_by_endpoint_not_by_address(fake_microsoft):  # noqa: F811
    before = value("tenantlink_microsoft_request_duration_seconds_count", endpoint="discovery")
    microsoft.resolve_tenant("contoso.onmicrosoft.com")
    assert value("tenantlink_microsoft_request_duration_seconds_count", endpoint="discovery") == before + 1
    exposed = microsoft.metrics.exposition()[0].decode()
    assert "contoso" not in exposed and "login.microsoftonline.com" not in exposed


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "unreachable"),
        (httpx.Response(503, text="down"), "http_5xx"),
        (httpx.Response(400, json={"error": "invalid_request"}), "http_4xx"),
        (httpx.Response(200, text="<html>"), "bad_answer"),
    ],
)
def test_failed_calls_to_microsoft_are_counted_by_endpoint_and_kind(fake_microsoft, failure, kind):  # noqa: F811
    before = value("tenantlink_microsoft_errors_total", endpoint="token", kind=kind)
    fake_microsoft.fail_with(failure)
    with pytest.raises(microsoft.MicrosoftError):
        microsoft.confirm_app_in_tenant("7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47")
    assert value("tenantlink_microsoft_errors_total", endpoint="token", kind=kind) == before + 1


def test_requests_are_timed_by_view(client):
    labels = {"view": "signin", "method": "GET", "status": "2xx"}
    before = value("tenantlink_request_duration_seconds_count", **labels)
    client.get("/signin/")
    assert value("tenantlink_request_duration_seconds_count", **labels) == before + 1


def test_unknown_addresses_share_one_label(client):
    labels = {"view": "unmatched", "method": "GET", "status": "4xx"}
    before = value("tenantlink_request_duration_seconds_count", **labels)
    client.get("/no-such-page/7f3c2a9e/")
    assert value("tenantlink_request_duration_seconds_count", **labels) == before + 1
