"""OpenID discovery and the JWKS, per tenant GUID, per domain and for the multi-tenant aliases."""

import re

import pytest

from .support import CONTOSO, FABRIKAM, aad_json_error


def test_it_serves_a_tenants_discovery_document_by_guid(emulator):
    response = emulator.http.get(f"/{CONTOSO}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == f"{emulator.url}/{CONTOSO}/v2.0"
    assert document["authorization_endpoint"] == f"{emulator.url}/{CONTOSO}/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{emulator.url}/{CONTOSO}/oauth2/v2.0/token"
    assert document["jwks_uri"] == f"{emulator.url}/{CONTOSO}/discovery/v2.0/keys"
    assert document["end_session_endpoint"] == f"{emulator.url}/{CONTOSO}/oauth2/v2.0/logout"
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    ]
    assert document["response_modes_supported"] == ["query", "fragment", "form_post"]
    assert document["subject_types_supported"] == ["pairwise"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["scopes_supported"] == ["openid", "profile", "email", "offline_access"]
    assert document["request_uri_parameter_supported"] is False
    assert document["frontchannel_logout_supported"] is True
    assert document["http_logout_supported"] is True
    assert document["cloud_instance_name"] == "microsoftonline.com"
    assert document["msgraph_host"] == emulator.url.split("://")[1]
    assert "tenant_region_scope" in document
    assert "userinfo_endpoint" in document
    # Like Microsoft, PKCE works but is not advertised.
    assert "code_challenge_methods_supported" not in document


def test_a_tenant_domain_resolves_to_the_tenants_guid(emulator):
    document = emulator.http.get("/Fabrikam.onmicrosoft.com/v2.0/.well-known/openid-configuration").json()

    assert document["issuer"] == f"{emulator.url}/{FABRIKAM}/v2.0"
    assert document["token_endpoint"] == f"{emulator.url}/{FABRIKAM}/oauth2/v2.0/token"


@pytest.mark.parametrize("alias", ["organizations", "common"])
def test_the_multi_tenant_aliases_carry_the_tenantid_template(emulator, alias):
    document = emulator.http.get(f"/{alias}/v2.0/.well-known/openid-configuration").json()

    assert document["issuer"] == f"{emulator.url}/{{tenantid}}/v2.0"
    assert document["authorization_endpoint"] == f"{emulator.url}/{alias}/oauth2/v2.0/authorize"
    assert document["jwks_uri"] == f"{emulator.url}/{alias}/discovery/v2.0/keys"
    assert document["tenant_region_scope"] is None


def test_an_unknown_tenant_is_a_400_invalid_tenant_error(emulator):
    response = emulator.http.get(
        "/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"},
    )

    body = aad_json_error(response)
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["correlation_id"] == "11111111-2222-3333-4444-555555555555"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["error_uri"] == f"{emulator.url}/error?code=90002"
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nosuch.onmicrosoft.com' not found.")
    assert body["error_description"].endswith(
        f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: {body['correlation_id']}"
        f"\r\nTimestamp: {body['timestamp']}"
    )


def test_an_unknown_tenant_guid_is_not_found_either(emulator):
    response = emulator.http.get("/00000000-0000-0000-0000-000000000001/v2.0/.well-known/openid-configuration")

    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_the_jwks_publishes_at_least_two_rs256_keys_with_kid_and_issuer(emulator):
    keys = emulator.http.get(f"/{CONTOSO}/discovery/v2.0/keys").json()["keys"]

    assert len(keys) >= 2
    assert len({k["kid"] for k in keys}) == len(keys)
    for key in keys:
        assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB"
        assert key["n"] and key["x5c"]
        assert key["issuer"] == f"{emulator.url}/{CONTOSO}/v2.0"


def test_the_common_jwks_carries_the_issuer_template(emulator):
    keys = emulator.http.get("/common/discovery/v2.0/keys").json()["keys"]

    assert {k["issuer"] for k in keys} == {f"{emulator.url}/{{tenantid}}/v2.0"}


def test_the_jwks_of_an_unknown_tenant_is_an_error(emulator):
    response = emulator.http.get("/nosuch.example/discovery/v2.0/keys")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_tenant"


def test_the_home_page_lists_tenants_and_apps(emulator):
    page = emulator.http.get("/")

    assert page.status_code == 200
    assert "Entra emulator — for development" in page.text
    assert CONTOSO in page.text and "Tenantlink" in page.text
