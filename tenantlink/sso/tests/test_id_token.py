"""ID-token validation: every check a relying party owes, each one a small story of a broken token.
The end-to-end tests make the Entra emulator issue the same faults."""

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tenantlink.sso import id_tokens, microsoft
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import CachedDocument
from tenantlink.sso.tests.conftest import (
    AUTHORITY,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTOSO,
    FABRIKAM,
    NEW_SIGNING_KEY,
    public_jwk,
)


def refusal(token, nonce="the-nonce", reason="bad_token"):
    with pytest.raises(MicrosoftError) as caught:
        id_tokens.validate(token, nonce)
    assert caught.value.reason == reason
    return caught.value.code


def test_a_good_token_gives_its_claims(fake_microsoft):
    claims = id_tokens.validate(fake_microsoft.id_token(), "the-nonce")
    assert (claims["tid"], claims["oid"]) == (CONTOSO, "15550e69-065f-4d2c-b54d-9fd19885ed4c")


def test_a_token_of_another_tenant_is_valid_for_its_own_tenant(fake_microsoft):
    assert id_tokens.validate(fake_microsoft.id_token(tid=FABRIKAM), "the-nonce")["tid"] == FABRIKAM


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"iss": f"{AUTHORITY}/{FABRIKAM}/v2.0"}, "iss"),  # tid does not match the issuer's tenant
        ({"iss": f"https://attacker.example/{CONTOSO}/v2.0"}, "iss"),
        ({"aud": "someone-else"}, "InvalidAudienceError"),
        ({"aud": [CLIENT_ID, "someone-else"]}, "InvalidAudienceError"),  # ours among others is not ours
        ({"aud": None}, "MissingRequiredClaimError"),
        ({"sub": None}, "MissingRequiredClaimError"),
        ({"iat": None}, "MissingRequiredClaimError"),
        ({"nonce": None}, "MissingRequiredClaimError"),
        ({"oid": None}, "MissingRequiredClaimError"),
        ({"exp": int(time.time()) - 3600}, "ExpiredSignatureError"),
        ({"nbf": int(time.time()) + 3600}, "ImmatureSignatureError"),
        ({"iat": int(time.time()) + 3600}, "ImmatureSignatureError"),
        ({"nonce": "another-nonce"}, "nonce"),
        ({"oid": "not-a-guid"}, "tid/oid"),
        ({"tid": "organizations", "iss": f"{AUTHORITY}/organizations/v2.0"}, "tid/oid"),
        # Times are JSON numbers (RFC 7519), and an ID token lives about an hour, never for ever.
        ({"exp": str(int(time.time()) + 3600)}, "times"),
        ({"exp": 10**400}, "times"),
        ({"exp": int(time.time()) + 3 * 24 * 3600}, "times"),
        ({"iat": True}, "times"),
    ],
)
def test_a_token_with_a_wrong_claim_is_refused(fake_microsoft, changes, code):
    assert refusal(fake_microsoft.id_token(**changes)) == code


def test_a_refused_token_is_logged_with_the_check_it_failed_and_never_itself(fake_microsoft, caplog):
    token = fake_microsoft.id_token(nonce="another-nonce")
    refusal(token)
    assert "An ID token from Microsoft was refused: bad_token: nonce" in caplog.text
    assert [record.levelname for record in caplog.records if "ID token" in record.message] == ["WARNING"]
    assert token.split(".")[1] not in caplog.text


def test_a_minute_of_clock_difference_is_tolerated(fake_microsoft):
    now = int(time.time())
    token = fake_microsoft.id_token(iat=now + 30, nbf=now + 30, exp=now - 30)
    assert id_tokens.validate(token, "the-nonce")


def test_a_bad_signature_is_refused(fake_microsoft):
    header, payload, signature = fake_microsoft.id_token().split(".")
    forged_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload["oid"] = "38d28601-c6aa-424e-b88a-441c835164d1"
    forged = base64.urlsafe_b64encode(json.dumps(forged_payload).encode()).rstrip(b"=").decode()
    assert refusal(f"{header}.{forged}.{signature}") == "InvalidSignatureError"


def test_an_unsigned_token_is_refused(fake_microsoft):
    token = jwt.encode(
        jwt.decode(fake_microsoft.id_token(), options={"verify_signature": False}), None, algorithm="none"
    )
    assert refusal(token) == "alg none"


def test_a_token_signed_with_the_client_secret_is_refused(fake_microsoft, settings):
    claims = jwt.decode(fake_microsoft.id_token(), options={"verify_signature": False})
    token = jwt.encode(
        claims, settings.ENTRA_CLIENT_SECRET or CLIENT_SECRET, algorithm="HS256", headers={"kid": "key-1"}
    )
    assert refusal(token) == "alg HS256"


def test_garbage_is_refused(fake_microsoft):
    for token in ("", "not.a.token", "a" * 50, "e30.e30.e30"):
        assert refusal(token) in ("malformed", "alg None", "no kid")


def test_a_key_nobody_publishes_is_refused_as_one_not_fetched_yet(fake_microsoft):
    """It may be a key Microsoft rolled in a moment ago: the person is told to try again later."""
    token = fake_microsoft.id_token(key=NEW_SIGNING_KEY, kid="never-published")
    assert refusal(token, reason="new_key") == "unknown kid"
    assert "try again in a few minutes" in MicrosoftError("new_key").message


def test_a_newly_rolled_key_is_picked_up_with_one_refetch(fake_microsoft):
    id_tokens.validate(fake_microsoft.id_token(), "the-nonce")  # keys cached
    CachedDocument.objects.filter(url__endswith="/keys").update(
        fetched_at=CachedDocument.objects.get(url__endswith="/keys").fetched_at - microsoft.KEY_REFETCH_INTERVAL
    )
    fake_microsoft.published.append(public_jwk(NEW_SIGNING_KEY, "key-2"))  # Microsoft rolls its keys
    before = len(fake_microsoft.requests)

    claims = id_tokens.validate(fake_microsoft.id_token(key=NEW_SIGNING_KEY, kid="key-2"), "the-nonce")

    assert claims["tid"] == CONTOSO
    assert len(fake_microsoft.requests) == before + 1


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the fake Microsoft signing with it
def test_a_short_key_is_not_trusted(fake_microsoft):
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    fake_microsoft.published.append(public_jwk(short, "key-short"))
    with pytest.raises(MicrosoftError) as caught:
        id_tokens.validate(fake_microsoft.id_token(key=short, kid="key-short"), "the-nonce")
    assert (caught.value.reason, caught.value.code) == ("bad_answer", "weak key")


def test_the_keys_are_the_tokens_own_tenants(fake_microsoft):
    id_tokens.validate(fake_microsoft.id_token(tid=FABRIKAM), "the-nonce")
    asked = [request.url.path for request in fake_microsoft.requests]
    assert asked == [f"/{FABRIKAM}/v2.0/.well-known/openid-configuration", f"/{FABRIKAM}/discovery/v2.0/keys"]


def test_a_key_that_names_another_issuer_does_not_sign_for_this_tenant(fake_microsoft):
    """Microsoft's keys say whose tokens they sign: a key of one tenant, signing a token that
    claims another tenant, is not accepted for it (the lesson of Storm-0558)."""
    fake_microsoft.published[0]["issuer"] = f"{AUTHORITY}/{CONTOSO}/v2.0"
    assert id_tokens.validate(fake_microsoft.id_token(tid=CONTOSO), "the-nonce")["tid"] == CONTOSO
    assert refusal(fake_microsoft.id_token(tid=FABRIKAM)) == "key issuer"
    # The usual template names every tenant.
    fake_microsoft.published[0]["issuer"] = f"{AUTHORITY}/{{tenantid}}/v2.0"
    CachedDocument.objects.all().delete()
    microsoft._documents.clear()
    assert id_tokens.validate(fake_microsoft.id_token(tid=FABRIKAM), "the-nonce")["tid"] == FABRIKAM


def test_a_token_of_a_tenant_microsoft_does_not_know_is_refused(fake_microsoft):
    unknown = "0b0b0b0b-1111-4222-8333-444455556666"
    assert refusal(fake_microsoft.id_token(tid=unknown, iss=f"{AUTHORITY}/{unknown}/v2.0")) == "unknown tid"


@pytest.mark.parametrize("issuer", [["x"], 0, False, {"a": 1}, None])
def test_a_key_whose_issuer_cannot_be_read_signs_for_nobody(fake_microsoft, issuer):
    fake_microsoft.published[0]["issuer"] = issuer
    assert refusal(fake_microsoft.id_token()) == "key issuer"


def test_keys_are_not_taken_from_a_discovery_document_that_names_another_tenant(fake_microsoft, monkeypatch):
    """OpenID Connect Discovery 4.3: the issuer a tenant's document names must be that tenant."""
    answer = fake_microsoft.discovery
    monkeypatch.setattr(fake_microsoft, "discovery", lambda name: answer(CONTOSO if name == FABRIKAM else name))
    with pytest.raises(MicrosoftError) as caught:
        id_tokens.validate(fake_microsoft.id_token(tid=FABRIKAM), "the-nonce")
    assert (caught.value.reason, caught.value.code) == ("bad_answer", "issuer")


def test_a_token_naming_no_tenant_fetches_no_keys(fake_microsoft):
    for tid in (None, "", "../../elsewhere", "x" * 40, 7):
        assert refusal(fake_microsoft.id_token(tid=tid)) == "tid/oid"
    assert refusal(fake_microsoft.id_token(tid=FABRIKAM, iss=f"{AUTHORITY}/{CONTOSO}/v2.0")) == "iss"
    assert fake_microsoft.requests == []


def test_a_key_of_the_right_name_but_another_value_does_not_verify(fake_microsoft):
    assert refusal(fake_microsoft.id_token(key=NEW_SIGNING_KEY, kid="key-1")) == "InvalidSignatureError"
