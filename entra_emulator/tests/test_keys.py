"""ID tokens validate with a general-purpose JOSE library, and keys roll over like Microsoft's."""

import httpx
import jwt
import pytest

from .support import BEN, CLIENT_ID, CONTOSO, FIONA, FRANK


def validate(emulator, id_token: str, jwks_client: jwt.PyJWKClient | None = None) -> dict:
    """What a relying party does: keys from the discovery document's jwks_uri, the issuer
    template filled in with the token's tid, exact iss and aud."""
    discovery = httpx.get(f"{emulator.url}/organizations/v2.0/.well-known/openid-configuration").json()
    jwks_client = jwks_client or jwt.PyJWKClient(discovery["jwks_uri"], cache_jwk_set=False)
    tid = jwt.decode(id_token, options={"verify_signature": False})["tid"]
    signing_key = jwks_client.get_signing_key_from_jwt(id_token)
    return jwt.decode(
        id_token,
        signing_key.key,
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=discovery["issuer"].replace("{tenantid}", tid),
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )


def test_an_id_token_validates_with_pyjwt_against_the_discovered_keys(emulator, browser):
    id_token = emulator.id_token_for(browser, BEN)

    claims = validate(emulator, id_token)

    assert claims["tid"] == CONTOSO and claims["oid"] == BEN.oid


def test_the_issuer_check_is_exact(emulator, browser):
    id_token = emulator.id_token_for(browser, BEN)
    discovery = httpx.get(f"{emulator.url}/organizations/v2.0/.well-known/openid-configuration").json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)

    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            id_token,
            key.key,
            algorithms=["RS256"],
            audience=CLIENT_ID,
            issuer=discovery["issuer"].replace("{tenantid}", "c2e8b5f1-6a3d-4f97-8b2e-5d1c9a7e4f30"),
        )


def test_rotation_publishes_a_new_current_key_and_keeps_the_previous_one(emulator):
    before = emulator.control("GET", "keys").json()

    after = emulator.control("POST", "keys/rotate").json()

    assert after["current"] not in before["published"]
    assert after["published"] == [before["current"], after["current"]]
    published = {k["kid"] for k in httpx.get(f"{emulator.url}/{CONTOSO}/discovery/v2.0/keys").json()["keys"]}
    assert published == set(after["published"])


def test_older_keys_drop_off_after_two_rotations_but_two_stay_published(emulator):
    first = emulator.control("GET", "keys").json()
    emulator.control("POST", "keys/rotate")
    latest = emulator.control("POST", "keys/rotate").json()

    keys = httpx.get(f"{emulator.url}/common/discovery/v2.0/keys").json()["keys"]
    assert len(keys) == 2
    assert first["current"] not in {k["kid"] for k in keys}
    assert latest["current"] in {k["kid"] for k in keys}


def test_tokens_signed_before_and_after_a_rotation_both_validate(emulator, browser):
    old_token = emulator.id_token_for(browser, BEN)
    emulator.control("POST", "keys/rotate").raise_for_status()
    new_token = emulator.id_token_for(browser, BEN)

    assert jwt.get_unverified_header(old_token)["kid"] != jwt.get_unverified_header(new_token)["kid"]
    assert validate(emulator, old_token)["oid"] == BEN.oid
    assert validate(emulator, new_token)["oid"] == BEN.oid


def test_a_token_signed_with_a_key_that_dropped_off_no_longer_validates(emulator, browser):
    old_token = emulator.id_token_for(browser, BEN)
    emulator.control("POST", "keys/rotate")
    emulator.control("POST", "keys/rotate")

    with pytest.raises(jwt.PyJWKClientError):
        validate(emulator, old_token)


def test_reset_restores_the_original_keys(emulator):
    original = emulator.control("GET", "keys").json()
    emulator.control("POST", "keys/rotate")

    emulator.reset()

    assert emulator.control("GET", "keys").json() == original


def test_tokens_of_another_tenant_validate_with_their_own_issuer(emulator, browser):
    browser.grant_admin_consent(FRANK)
    browser.client.cookies.clear()

    claims = validate(emulator, emulator.id_token_for(browser, FIONA))

    assert claims["iss"] == f"{emulator.url}/{claims['tid']}/v2.0" and claims["oid"] == FIONA.oid
