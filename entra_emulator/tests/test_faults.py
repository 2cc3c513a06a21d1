"""Fault injection: broken ID tokens and failing or hanging endpoints, and reset clearing them."""

import time

import httpx
import jwt
import pytest

from .conftest import start_emulator, stop
from .support import BEN, CLIENT_ID, CONTOSO, SECRET, Emulator, claims_of, header_of, redirect_params
from .test_keys import validate


def faulty_id_token(emulator, browser, fault: str) -> str:
    emulator.fault(fault=fault)
    return emulator.id_token_for(browser, BEN)


@pytest.mark.parametrize(
    "fault, error",
    [
        ("wrong_iss", jwt.InvalidIssuerError),
        ("wrong_aud", jwt.InvalidAudienceError),
        ("missing_aud", jwt.MissingRequiredClaimError),
        ("missing_sub", jwt.MissingRequiredClaimError),
        ("missing_iat", jwt.MissingRequiredClaimError),
        ("expired", jwt.ExpiredSignatureError),
        ("future_nbf", jwt.ImmatureSignatureError),
        ("bad_signature", jwt.InvalidSignatureError),
    ],
)
def test_each_claim_fault_breaks_validation_the_expected_way(emulator, browser, fault, error):
    id_token = faulty_id_token(emulator, browser, fault)

    with pytest.raises(error):
        validate(emulator, id_token)


def test_wrong_nonce_changes_only_the_nonce(emulator, browser):
    claims = validate(emulator, faulty_id_token(emulator, browser, "wrong_nonce"))

    assert claims["nonce"] != "nonce-1"


def test_tid_mismatch_gives_a_tid_that_differs_from_the_issuers_tenant(emulator, browser):
    claims = claims_of(faulty_id_token(emulator, browser, "tid_mismatch"))

    assert claims["iss"] == f"{emulator.url}/{CONTOSO}/v2.0"
    assert claims["tid"] != CONTOSO


def published_kids(emulator) -> set[str]:
    return {k["kid"] for k in httpx.get(f"{emulator.url}/common/discovery/v2.0/keys").json()["keys"]}


def test_alg_none_gives_an_unsigned_token_that_only_the_algorithm_check_catches(emulator, browser):
    id_token = faulty_id_token(emulator, browser, "alg_none")

    assert header_of(id_token)["alg"] == "none"
    assert id_token.endswith(".")
    # The kid names a published key, so a validator gets as far as the algorithm check.
    assert header_of(id_token)["kid"] in published_kids(emulator)
    with pytest.raises(jwt.InvalidAlgorithmError):
        validate(emulator, id_token)
    assert jwt.decode(id_token, options={"verify_signature": False})["oid"] == BEN.oid


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_hs256_client_secret_signs_with_the_client_secret(emulator, browser):
    id_token = faulty_id_token(emulator, browser, "hs256_client_secret")

    assert header_of(id_token)["alg"] == "HS256"
    assert header_of(id_token)["kid"] in published_kids(emulator)
    assert jwt.decode(id_token, SECRET, algorithms=["HS256"], audience=CLIENT_ID)["oid"] == BEN.oid
    with pytest.raises(jwt.InvalidAlgorithmError):
        validate(emulator, id_token)


def test_wrong_iss_and_tid_mismatch_combine(emulator, browser):
    emulator.fault(fault="tid_mismatch")
    emulator.fault(fault="wrong_iss")

    claims = claims_of(emulator.id_token_for(browser, BEN))

    assert claims["tid"] != CONTOSO
    assert claims["iss"] != f"{emulator.url}/{CONTOSO}/v2.0"


def test_unknown_kid_is_signed_by_a_key_that_is_not_published(emulator, browser):
    id_token = faulty_id_token(emulator, browser, "unknown_kid")

    assert header_of(id_token)["kid"] not in published_kids(emulator)


def test_rotated_kid_makes_a_cached_jwks_stale_until_it_is_refetched(emulator, browser):
    jwks_uri = f"{emulator.url}/common/discovery/v2.0/keys"
    cached = {k["kid"] for k in httpx.get(jwks_uri).json()["keys"]}

    id_token = faulty_id_token(emulator, browser, "rotated_kid")

    kid = header_of(id_token)["kid"]
    assert kid not in cached
    assert kid in {k["kid"] for k in httpx.get(jwks_uri).json()["keys"]}
    assert validate(emulator, id_token)["oid"] == BEN.oid


def test_a_token_fault_applies_once_by_default(emulator, browser):
    emulator.fault(fault="wrong_aud")

    first = claims_of(emulator.id_token_for(browser, BEN))
    second = claims_of(emulator.id_token_for(browser, BEN))

    assert first["aud"] != CLIENT_ID
    assert second["aud"] == CLIENT_ID


def test_a_token_fault_can_apply_always(emulator, browser):
    emulator.fault(fault="missing_sub", times="always")

    for _ in range(3):
        assert "sub" not in claims_of(emulator.id_token_for(browser, BEN))
    assert emulator.control("GET", "faults").json()["faults"][0]["times"] == "always"


def test_reset_clears_faults(emulator, browser):
    emulator.fault(fault="expired", times="always")
    emulator.fault(endpoint="token", status=500, times="always")

    emulator.reset()

    assert emulator.control("GET", "faults").json() == {"faults": []}
    assert validate(emulator, emulator.id_token_for(browser, BEN))


@pytest.mark.parametrize("status, error", [(500, "server_error"), (503, "temporarily_unavailable")])
def test_the_token_endpoint_can_fail_with_a_json_error(emulator, browser, status, error):
    code = browser.sign_in_through(BEN)["code"]
    emulator.fault(endpoint="token", status=status)

    response = emulator.redeem(code)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert emulator.redeem(code).status_code == 200  # the fault was used up; the code was not


def test_discovery_and_jwks_can_fail(emulator):
    emulator.fault(endpoint="discovery", status=503)
    emulator.fault(endpoint="jwks", status=500)

    assert emulator.http.get("/common/v2.0/.well-known/openid-configuration").status_code == 503
    assert emulator.http.get("/common/discovery/v2.0/keys").status_code == 500
    assert emulator.http.get("/common/discovery/v2.0/keys").status_code == 200


def test_the_authorize_and_admin_consent_pages_can_fail(emulator, browser):
    emulator.fault(endpoint="authorize", status=503)
    emulator.fault(endpoint="adminconsent", status=500)

    page = browser.authorize()
    assert page.status_code == 503 and "AADSTS90033" in page.text
    assert browser.admin_consent(CONTOSO).status_code == 500


def test_graph_can_fail(emulator):
    emulator.fault(endpoint="graph", status=503)

    assert emulator.http.get("/v1.0/me").status_code == 503


def test_the_wildcard_fault_hits_whichever_endpoint_comes_next(emulator):
    emulator.fault(endpoint="*", status=500, times=2)

    assert emulator.http.get("/common/discovery/v2.0/keys").status_code == 500
    assert emulator.http.get("/v1.0/me").status_code == 500
    assert emulator.http.get("/common/discovery/v2.0/keys").status_code == 200


def test_the_control_api_is_never_faulted(emulator):
    emulator.fault(endpoint="*", status=500, times="always")

    assert emulator.control("GET", "faults").status_code == 200


def test_an_endpoint_can_hang(emulator):
    emulator.fault(endpoint="token", hang_seconds=2)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{emulator.url}/common/oauth2/v2.0/token", data={}, timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_a_hang_then_answers_normally(emulator):
    emulator.fault(endpoint="discovery", hang_seconds=0.3)

    started = time.monotonic()
    response = emulator.http.get("/common/v2.0/.well-known/openid-configuration")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_prompt_none_errors_are_unaffected_by_token_faults(emulator, browser):
    emulator.fault(fault="expired")

    assert redirect_params(browser.authorize(prompt="none"))["error"] == "login_required"


@pytest.mark.parametrize(
    "spec",
    [
        {"fault": "bogus"},
        {"endpoint": "nowhere", "status": 500},
        {"endpoint": "token"},
        {"endpoint": "token", "status": 200},
        {"fault": "expired", "times": 0},
        {"endpoint": "token", "hang_seconds": True},
        {"endpoint": "token", "status": True},
        {"something": "else"},
        {"endpoint": "graph", "retry_after": 5},
        {"endpoint": "graph", "status": 429, "retry_after": -1},
        {"endpoint": "graph", "status": 429, "retry_after": "soon"},
        {"endpoint": "graph", "garbage_body": "yes"},
        {"endpoint": "graph", "garbage_body": True, "status": 100},
        {"endpoint": "token", "batch_item": True, "status": 429},
        {"endpoint": "graph", "batch_item": True, "hang_seconds": 1},
        {"endpoint": "graph", "batch_item": True, "status": 429, "garbage_body": True},
        {"endpoint": "graph", "batch_item": True},
    ],
)
def test_a_malformed_fault_is_refused(emulator, spec):
    response = emulator.control("POST", "faults", spec)

    assert response.status_code == 400
    assert response.json()["error"]


def test_a_throttled_token_endpoint_says_when_to_retry(emulator):
    emulator.fault(endpoint="token", status=429, retry_after=2)

    response = emulator.client_credentials(CONTOSO)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"] == "server_error"


def test_a_garbled_page_is_html_and_a_garbled_document_is_json(emulator, browser):
    emulator.fault(endpoint="authorize", garbage_body=True, status=502)
    emulator.fault(endpoint="discovery", garbage_body=True)

    page = browser.authorize()
    document = emulator.http.get("/common/v2.0/.well-known/openid-configuration")

    assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
    assert document.status_code == 200 and document.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):
        document.json()


def test_faults_list_their_extra_settings(emulator):
    emulator.fault(endpoint="graph", batch_item=True, status=429, retry_after=4, times="always")

    (fault,) = emulator.control("GET", "faults").json()["faults"]

    assert fault["batch_item"] is True and fault["retry_after"] == 4 and fault["status"] == 429


def test_a_client_that_gives_up_during_a_hang_leaves_no_traceback(tmp_path):
    """The portal's timeout is shorter than the hang: the emulator then finds nobody to read the
    form from, which is no error of its own."""
    process, url = start_emulator(tmp_path)
    try:
        Emulator(url).fault(endpoint="token", hang_seconds=1)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/common/oauth2/v2.0/token", data={"grant_type": "client_credentials"}, timeout=0.3)
        time.sleep(1.5)  # the hang ends, and the handler reads the form
        assert httpx.get(f"{url}/common/v2.0/.well-known/openid-configuration").status_code == 200
    finally:
        stop(process)
    log = (tmp_path / "emulator.log").read_text()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log
