"""Graph, app-only: is a user still enabled? ``GET /v1.0/users/{id}`` and ``POST /v1.0/$batch``
with a client-credentials token that carries the ``User.Read.All`` application permission.

The demo app is registered with ``User.Read.All``; Contoso's administrator grants it through admin
consent with ``/.default`` before each story that needs it.
"""

import json
import time

import httpx
import pytest

from .support import ADA, BEN, CLEO, CONTOSO, FRANK, GRAPH_DEFAULT, GRAPH_READER, PORTAL_SCOPES
from .test_graph import access_token_for

ENABLED_ONLY = "$select=id,accountEnabled"


@pytest.fixture
def token(emulator, browser):
    """An app-only token for Contoso, after its administrator granted the app's permissions."""
    browser.grant_admin_consent(ADA, scope=GRAPH_DEFAULT)
    return app_token(emulator, CONTOSO)


def app_token(emulator, tenant: str) -> str:
    response = emulator.client_credentials(tenant)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def get_user(emulator, token: str, ref: str, query: str = ENABLED_ONLY) -> httpx.Response:
    return emulator.http.get(f"/v1.0/users/{ref}?{query}", headers=bearer(token))


def send_batch(emulator, token: str, requests: list[dict]) -> httpx.Response:
    return emulator.http.post("/v1.0/$batch", json={"requests": requests}, headers=bearer(token))


def user_request(request_id: str, ref: str) -> dict:
    return {"id": request_id, "method": "GET", "url": f"/users/{ref}?{ENABLED_ONLY}"}


def responses_by_id(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def graph_error(response_or_body, status: int | None = None) -> dict:
    """The ``error`` object of a Graph error body, its shape checked."""
    if isinstance(response_or_body, httpx.Response):
        assert response_or_body.status_code == status, response_or_body.text
        response_or_body = response_or_body.json()
    error = response_or_body["error"]
    assert set(error) == {"code", "message", "innerError"}
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


def disable(emulator, person) -> None:
    emulator.control("PATCH", f"tenants/{person.tid}/users/{person.oid}", {"enabled": False}).raise_for_status()


def delete(emulator, person) -> None:
    emulator.control("DELETE", f"tenants/{person.tid}/users/{person.oid}").raise_for_status()


# --- One user ---


def test_an_enabled_user_reads_as_account_enabled_true(emulator, token):
    response = get_user(emulator, token, BEN.oid)

    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": f"{emulator.url}/v1.0/$metadata#users(id,accountEnabled)/$entity",
        "id": BEN.oid,
        "accountEnabled": True,
    }


def test_a_disabled_user_reads_as_account_enabled_false(emulator, token):
    disable(emulator, BEN)

    response = get_user(emulator, token, BEN.oid)

    assert response.status_code == 200
    assert response.json()["accountEnabled"] is False


def test_a_deleted_user_is_not_found(emulator, token):
    delete(emulator, BEN)

    response = get_user(emulator, token, BEN.oid)

    error = graph_error(response, 404)
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (
        f"Resource '{BEN.oid}' does not exist or one of its queried reference-property objects are not present."
    )


def test_a_restored_user_is_found_again_as_they_were(emulator, token):
    disable(emulator, BEN)
    delete(emulator, BEN)
    emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.oid}/restore").raise_for_status()

    response = get_user(emulator, token, BEN.oid)

    assert response.status_code == 200
    assert response.json()["accountEnabled"] is False


def test_a_user_can_be_named_by_user_principal_name(emulator, token):
    assert get_user(emulator, token, BEN.upn).json()["id"] == BEN.oid


def test_a_user_of_another_tenant_is_not_found(emulator, token):
    response = get_user(emulator, token, FRANK.oid)

    assert graph_error(response, 404)["code"] == "Request_ResourceNotFound"


def test_account_enabled_comes_back_only_when_selected(emulator, token):
    body = get_user(emulator, token, BEN.oid, query="").json()

    assert "accountEnabled" not in body
    assert body["@odata.context"] == f"{emulator.url}/v1.0/$metadata#users/$entity"
    assert body["id"] == BEN.oid and body["displayName"] == "Ben Berg" and body["userPrincipalName"] == BEN.upn


def test_select_gives_exactly_the_named_properties_in_graphs_spelling(emulator, token):
    body = get_user(emulator, token, CLEO.oid, query="$select=DisplayName,accountenabled,mail").json()

    assert body == {
        "@odata.context": f"{emulator.url}/v1.0/$metadata#users(displayName,accountEnabled,mail)/$entity",
        "displayName": "Cleo Carter",
        "accountEnabled": True,
        "mail": None,
    }


def test_an_unknown_property_in_select_is_a_bad_request(emulator, token):
    response = get_user(emulator, token, BEN.oid, query="$select=id,shoeSize")

    error = graph_error(response, 400)
    assert error["code"] == "Request_BadRequest"
    assert "'shoeSize'" in error["message"]


# --- Permission ---


def test_without_user_read_all_it_is_403(emulator, browser):
    # The administrator approved only what the portal asks for at sign-in: no application permission.
    browser.grant_admin_consent(ADA, scope=PORTAL_SCOPES)

    response = get_user(emulator, app_token(emulator, CONTOSO), BEN.oid)

    error = graph_error(response, 403)
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"] == "Insufficient privileges to complete the operation."


def test_a_delegated_token_is_403(emulator, browser):
    code = browser.sign_in_through(ADA)["code"]
    delegated = emulator.redeem(code).json()["access_token"]

    assert graph_error(get_user(emulator, delegated, BEN.oid), 403)["code"] == "Authorization_RequestDenied"


def test_permission_is_checked_before_existence(emulator, browser):
    browser.grant_admin_consent(ADA, scope=PORTAL_SCOPES)

    response = get_user(emulator, app_token(emulator, CONTOSO), "00000000-0000-0000-0000-000000000000")

    assert response.status_code == 403


# --- The token ---


def forged(token: str) -> str:
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[::-1]}"


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "Access token is empty."),
        ({"Authorization": "Bearer"}, "Access token is empty."),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Access token is empty."),
        ({"Authorization": "Bearer not-a-jwt"}, None),
    ],
)
def test_a_missing_or_malformed_token_is_401(emulator, headers, message):
    response = emulator.http.get(f"/v1.0/users/{BEN.oid}", headers=headers)

    error = graph_error(response, 401)
    assert error["code"] == "InvalidAuthenticationToken"
    assert message is None or error["message"] == message
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_forged_token_is_401(emulator, token):
    response = get_user(emulator, forged(token), BEN.oid)

    assert graph_error(response, 401)["code"] == "InvalidAuthenticationToken"


def test_an_expired_token_is_401(emulator, token):
    emulator.control("POST", "clock", {"advance_seconds": 3700}).raise_for_status()

    response = get_user(emulator, token, BEN.oid)

    error = graph_error(response, 401)
    assert error["code"] == "InvalidAuthenticationToken"
    assert "expired" in error["message"]


def test_a_token_for_another_audience_is_401(emulator, token, browser):
    id_token = emulator.id_token_for(browser, BEN)  # aud: the app's client ID, not Graph

    error = graph_error(get_user(emulator, id_token, BEN.oid), 401)

    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == "Access token validation failure. Invalid audience."


# --- $batch ---


def test_a_batch_answers_each_request_with_its_own_status(emulator, token):
    disable(emulator, CLEO)
    delete(emulator, BEN)
    requests = [
        user_request("ada", ADA.oid),
        user_request("ben", BEN.oid),
        user_request("cleo", CLEO.oid),
        {"id": "frank", "method": "GET", "url": f"users/{FRANK.oid}?{ENABLED_ONLY}"},  # no leading slash
    ]

    answers = responses_by_id(send_batch(emulator, token, requests))

    assert set(answers) == {"ada", "ben", "cleo", "frank"}
    assert (answers["ada"]["status"], answers["ada"]["body"]["accountEnabled"]) == (200, True)
    assert (answers["cleo"]["status"], answers["cleo"]["body"]["accountEnabled"]) == (200, False)
    assert answers["cleo"]["body"]["id"] == CLEO.oid
    for deleted_or_elsewhere in (answers["ben"], answers["frank"]):
        assert deleted_or_elsewhere["status"] == 404
        assert graph_error(deleted_or_elsewhere["body"])["code"] == "Request_ResourceNotFound"
    assert all(set(a) == {"id", "status", "headers", "body"} for a in answers.values())
    assert answers["ada"]["headers"]["Content-Type"].startswith("application/json")


def test_a_batch_of_twenty_is_answered(emulator, token):
    requests = [user_request(str(n), BEN.oid) for n in range(1, 21)]

    answers = responses_by_id(send_batch(emulator, token, requests))

    assert sorted(answers, key=int) == [str(n) for n in range(1, 21)]
    assert {a["status"] for a in answers.values()} == {200}


def test_a_batch_of_twenty_one_is_refused(emulator, token):
    requests = [user_request(str(n), BEN.oid) for n in range(1, 22)]

    response = send_batch(emulator, token, requests)

    assert graph_error(response, 400)["code"] == "BadRequest"
    assert "20" in response.json()["error"]["message"]


def test_a_batch_without_the_permission_is_answered_403_item_by_item(emulator, browser):
    browser.grant_admin_consent(ADA, scope=PORTAL_SCOPES)

    answers = responses_by_id(send_batch(emulator, app_token(emulator, CONTOSO), [user_request("1", BEN.oid)]))

    assert answers["1"]["status"] == 403
    assert graph_error(answers["1"]["body"])["code"] == "Authorization_RequestDenied"


def test_a_batch_with_an_expired_token_is_refused_as_a_whole(emulator, token):
    emulator.control("POST", "clock", {"advance_seconds": 3700}).raise_for_status()

    response = send_batch(emulator, token, [user_request("1", BEN.oid)])

    assert graph_error(response, 401)["code"] == "InvalidAuthenticationToken"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"requests": {}}',
        b'{"requests": [{"method": "GET", "url": "/users/x"}]}',
        b'{"requests": [{"id": "1", "method": "GET"}]}',
        b'{"requests": [{"id": 1, "method": "GET", "url": "/users/x"}]}',
        json.dumps({"requests": [user_request("1", BEN.oid), user_request("1", ADA.oid)]}).encode(),
        b'{"requests":' + b"[" * 100_000,  # nested too deep for Python's reader
    ],
)
def test_a_malformed_batch_is_a_bad_request(emulator, token, body):
    response = emulator.http.post(
        "/v1.0/$batch", content=body, headers={**bearer(token), "Content-Type": "application/json"}
    )

    assert graph_error(response, 400)["code"] == "BadRequest"


def test_batch_items_the_emulator_does_not_serve_are_refused_one_by_one(emulator, token):
    requests = [
        {"id": "patch", "method": "PATCH", "url": f"/users/{BEN.oid}"},
        {"id": "groups", "method": "GET", "url": "/groups"},
        {"id": "absolute", "method": "GET", "url": f"https://graph.microsoft.com/v1.0/users/{BEN.oid}"},
        {"id": "unreadable", "method": "GET", "url": "http://[::1"},
        user_request("ok", BEN.oid),
    ]

    answers = responses_by_id(send_batch(emulator, token, requests))

    statuses = {i: a["status"] for i, a in answers.items()}
    assert statuses == {"patch": 405, "groups": 400, "absolute": 400, "unreadable": 400, "ok": 200}


def test_me_works_inside_a_batch_with_a_delegated_token(emulator, browser):
    emulator.control("POST", "apps", GRAPH_READER).raise_for_status()
    delegated = access_token_for(emulator, browser, BEN)

    answers = responses_by_id(send_batch(emulator, delegated, [{"id": "1", "method": "GET", "url": "/me"}]))

    assert answers["1"]["status"] == 200 and answers["1"]["body"]["id"] == BEN.oid


# --- Throttling and failures ---


def test_a_throttled_request_says_when_to_retry_and_then_is_answered(emulator, token):
    emulator.fault(endpoint="graph", status=429, retry_after=3, times=2)

    throttled = [get_user(emulator, token, BEN.oid) for _ in range(2)]
    answered = get_user(emulator, token, BEN.oid)

    for response in throttled:
        assert graph_error(response, 429)["code"] == "TooManyRequests"
        assert response.headers["retry-after"] == "3"
    assert answered.status_code == 200 and "retry-after" not in answered.headers


def test_a_whole_batch_can_be_throttled(emulator, token):
    emulator.fault(endpoint="graph", status=429, retry_after=10)

    response = send_batch(emulator, token, [user_request("1", BEN.oid)])

    assert graph_error(response, 429)["code"] == "TooManyRequests"
    assert response.headers["retry-after"] == "10"
    assert responses_by_id(send_batch(emulator, token, [user_request("1", BEN.oid)]))["1"]["status"] == 200


def test_requests_inside_a_batch_can_be_throttled_one_by_one(emulator, token):
    emulator.fault(endpoint="graph", batch_item=True, status=429, retry_after=7, times=2)
    requests = [user_request(str(n), BEN.oid) for n in range(1, 5)]

    answers = responses_by_id(send_batch(emulator, token, requests))

    throttled = [a for a in answers.values() if a["status"] == 429]
    assert len(throttled) == 2
    for answer in throttled:
        assert answer["headers"]["Retry-After"] == "7"
        assert graph_error(answer["body"])["code"] == "TooManyRequests"
    assert [a["status"] for a in answers.values()].count(200) == 2


def test_a_batch_item_fault_leaves_direct_requests_alone(emulator, token):
    emulator.fault(endpoint="graph", batch_item=True, status=429)

    assert get_user(emulator, token, BEN.oid).status_code == 200
    assert responses_by_id(send_batch(emulator, token, [user_request("1", BEN.oid)]))["1"]["status"] == 429


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_graph_can_fail_with_a_server_error_in_graphs_shape(emulator, token, status):
    emulator.fault(endpoint="graph", status=status)

    response = get_user(emulator, token, BEN.oid)

    assert graph_error(response, status)["code"]
    assert get_user(emulator, token, BEN.oid).status_code == 200


def test_graph_can_answer_with_a_garbled_body(emulator, token):
    emulator.fault(endpoint="graph", garbage_body=True)

    response = get_user(emulator, token, BEN.oid)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_graph_can_hang(emulator, token):
    emulator.fault(endpoint="graph", hang_seconds=2)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{emulator.url}/v1.0/users/{BEN.oid}", headers=bearer(token), timeout=0.3)
    assert time.monotonic() - started < 1.5
