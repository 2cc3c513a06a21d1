"""The control API that tests and developers use to shape the directory."""

import json
import subprocess
import sys

import httpx

from entra_emulator import DEMO_DIRECTORY

from .conftest import REPO_ROOT, start_emulator, stop
from .support import BEN, CLIENT_ID, CONTOSO, FABRIKAM, redirect_params

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def test_it_shows_the_directory_as_loaded(emulator):
    directory = emulator.control("GET", "directory").json()

    assert [t["domain"] for t in directory["tenants"]] == ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"]
    assert directory["apps"][0]["client_id"] == CLIENT_ID
    assert directory == json.loads(DEMO_DIRECTORY.read_text()) | directory  # nothing lost on the way


def test_a_redirect_uri_can_be_added_for_a_portal_on_a_random_port(emulator, browser):
    redirect_uri = "http://127.0.0.1:53123/sso/callback/"
    response = emulator.control("POST", f"apps/{CLIENT_ID}/redirect_uris", {"uri": redirect_uri})
    assert response.status_code == 200
    assert redirect_uri in response.json()["redirect_uris"]

    consent = browser.sign_in(browser.authorize(redirect_uri=redirect_uri), BEN)

    assert redirect_params(browser.accept(consent), to=redirect_uri)["code"]


def test_a_page_of_another_site_cannot_change_anything(emulator):
    """A page a developer opens while the emulator runs can post a form or text/plain body here
    without asking first; the browser says where it comes from."""
    evil = {"uri": "https://evil.example/callback"}
    for headers in (
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        response = emulator.http.post(
            f"/_emulator/apps/{CLIENT_ID}/redirect_uris", content=json.dumps(evil), headers=headers
        )
        assert response.status_code == 403, headers
    assert "https://evil.example/callback" not in str(emulator.control("GET", "directory").json())
    # A name of the attacker's that resolves to this machine: the browser says same-origin.
    rebound = {"Host": "evil.example:8400", "Origin": "http://evil.example:8400", "Sec-Fetch-Site": "same-origin"}
    assert emulator.http.get("/_emulator/directory", headers=rebound).status_code == 403
    # The emulator's own pages, and tools that send neither header, still may.
    own = {"Origin": emulator.url, "Sec-Fetch-Site": "same-origin"}
    assert emulator.http.post(f"/_emulator/apps/{CLIENT_ID}/redirect_uris", json=evil, headers=own).status_code == 200


def test_a_user_can_be_added_and_sign_in(emulator, browser):
    new_user = {
        "oid": "0b3f0d8e-9a44-4c1e-8d57-3c0b9f1e2a55",
        "upn": "dora@contoso.onmicrosoft.com",
        "display_name": "Dora Dahl",
        "password": "Dora-pass-1",
    }
    assert emulator.control("POST", f"tenants/{CONTOSO}/users", new_user).status_code == 200

    page = browser.sign_in(browser.authorize(), "dora@contoso.onmicrosoft.com", password="Dora-pass-1")

    assert "Permissions requested" in page.text


def test_a_tenant_setting_can_be_changed_by_domain(emulator):
    response = emulator.control("PATCH", "tenants/fabrikam.onmicrosoft.com", {"user_consent_allowed": True})

    assert response.status_code == 200
    assert response.json()["user_consent_allowed"] is True
    assert response.json()["id"] == FABRIKAM


def test_a_tenant_can_be_added_and_discovered(emulator):
    tenant = {
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "domain": "northwind.onmicrosoft.com",
        "display_name": "Northwind",
        "users": [],
    }
    assert emulator.control("POST", "tenants", tenant).status_code == 200

    document = emulator.http.get("/northwind.onmicrosoft.com/v2.0/.well-known/openid-configuration").json()

    assert document["issuer"] == f"{emulator.url}/{tenant['id']}/v2.0"


def test_a_tenant_can_be_deleted(emulator):
    assert emulator.control("DELETE", f"tenants/{FABRIKAM}").status_code == 200

    assert emulator.http.get(f"/{FABRIKAM}/v2.0/.well-known/openid-configuration").status_code == 400


def test_a_user_can_be_deleted(emulator, browser):
    assert emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.upn}").status_code == 200

    assert "This username may be incorrect" in browser.sign_in(browser.authorize(), BEN).text


def contoso(emulator) -> dict:
    return next(t for t in emulator.control("GET", "directory").json()["tenants"] if t["id"] == CONTOSO)


def test_a_deleted_user_is_kept_among_the_deleted_users(emulator):
    emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.oid}").raise_for_status()

    tenant = contoso(emulator)

    assert BEN.oid not in [u["oid"] for u in tenant["users"]]
    (deleted,) = tenant["deleted_users"]
    assert deleted["oid"] == BEN.oid and deleted["deleted"].endswith("Z")


def test_a_deleted_user_can_be_restored_and_sign_in_again(emulator, browser):
    emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.oid}").raise_for_status()

    response = emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.upn}/restore")

    assert response.status_code == 200
    assert response.json()["oid"] == BEN.oid and "deleted" not in response.json()
    assert contoso(emulator)["deleted_users"] == []
    assert "Permissions requested" in browser.sign_in(browser.authorize(), BEN).text


def test_a_deleted_user_is_gone_for_good_after_thirty_days(emulator):
    emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.oid}").raise_for_status()
    emulator.control("POST", "clock", {"advance_seconds": 30 * 86400 + 1}).raise_for_status()

    response = emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.oid}/restore")

    assert response.status_code == 404
    assert contoso(emulator)["deleted_users"] == []


def test_a_deleted_user_can_be_restored_on_the_thirtieth_day(emulator):
    emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.oid}").raise_for_status()
    emulator.control("POST", "clock", {"advance_seconds": 30 * 86400 - 60}).raise_for_status()

    assert emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.oid}/restore").status_code == 200


def test_a_restore_is_refused_while_another_user_has_the_name(emulator):
    emulator.control("DELETE", f"tenants/{CONTOSO}/users/{BEN.oid}").raise_for_status()
    successor = {
        "oid": "0b3f0d8e-9a44-4c1e-8d57-3c0b9f1e2a57",
        "upn": BEN.upn,
        "display_name": "Ben II",
        "password": "x",
    }
    emulator.control("POST", f"tenants/{CONTOSO}/users", successor).raise_for_status()

    response = emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.oid}/restore")

    assert response.status_code == 400
    assert contoso(emulator)["deleted_users"][0]["oid"] == BEN.oid


def test_only_deleted_users_can_be_restored(emulator):
    assert emulator.control("POST", f"tenants/{CONTOSO}/users/{BEN.oid}/restore").status_code == 404


def test_an_administrator_is_a_global_administrator_unless_told_otherwise(emulator):
    users = {u["upn"]: u for u in contoso(emulator)["users"]}

    assert users["ada@contoso.onmicrosoft.com"]["admin_role"] == "Global Administrator"
    assert users[BEN.upn]["admin_role"] is None


def test_taking_admin_away_drops_the_admin_role(emulator):
    url = f"tenants/{CONTOSO}/users/ada@contoso.onmicrosoft.com"
    emulator.control("PATCH", url, {"admin_role": "Application Administrator"}).raise_for_status()

    response = emulator.control("PATCH", url, {"admin": False})

    assert response.status_code == 200
    assert response.json()["admin_role"] is None


def test_the_whole_directory_can_be_replaced_and_reset_restores_it(emulator):
    assert emulator.control("PUT", "directory", {"tenants": [], "apps": []}).json() == {"tenants": [], "apps": []}

    emulator.reset()

    assert len(emulator.control("GET", "directory").json()["tenants"]) == 2


def test_reset_forgets_sessions_and_codes(emulator, browser):
    code = browser.sign_in_through(BEN)["code"]

    emulator.reset()

    assert redirect_params(browser.authorize(prompt="none"))["error"] == "login_required"
    assert emulator.redeem(code).json()["error"] == "invalid_grant"


def test_invalid_changes_are_refused_and_change_nothing(emulator):
    before = emulator.control("GET", "directory").json()

    answers = [
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"id": "x", "user_consent_allowed": "yes"}),
        emulator.control(
            "POST", f"tenants/{CONTOSO}/users", {"oid": "not-a-guid", "upn": "x", "display_name": "x", "password": "x"}
        ),
        emulator.control(
            "POST",
            f"tenants/{CONTOSO}/users",
            {"oid": "0b3f0d8e-9a44-4c1e-8d57-3c0b9f1e2a56", "upn": BEN.upn, "display_name": "Twin", "password": "x"},
        ),
        emulator.control("POST", "apps", {"client_id": CLIENT_ID}),
        emulator.control("POST", f"apps/{CLIENT_ID}/secrets", {"value": "s", "expires": "someday"}),
        emulator.control("POST", "clock", {"advance_seconds": -5}),
        emulator.http.post("/_emulator/tenants", content=b"{not json"),
        # Values of the wrong JSON type, which must not be iterated or stringified.
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"assignments": "x"}),
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"users": 5}),
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"admin_consents": {CLIENT_ID: "openid"}}),
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"user_consents": {CLIENT_ID: 5}}),
        emulator.control("PATCH", f"tenants/{CONTOSO}/users/{BEN.oid}", {"mail": ["x"]}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"secrets": 5}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"redirect_uris": "http://127.0.0.1:8000/"}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"required_scopes": "openid"}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"display_name": {"a": 1}}),
        emulator.control("PUT", "directory", {"tenants": 5}),
        emulator.control("PATCH", f"tenants/{CONTOSO}/users/ada@contoso.onmicrosoft.com", {"admin_role": "Boss"}),
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"app_role_assignments": {CLIENT_ID: ["Mail.Send"]}}),
        emulator.control("PATCH", f"tenants/{CONTOSO}", {"deleted_users": [{"oid": BEN.oid}]}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"required_resource_access": {"a": 1}}),
        emulator.control("PATCH", f"apps/{CLIENT_ID}", {"required_resource_access": [{"resourceAppId": CLIENT_ID}]}),
        *[
            emulator.control(
                "PATCH",
                f"apps/{CLIENT_ID}",
                {"required_resource_access": [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": [access]}]},
            )
            for access in (
                {"id": "df021288-bdef-4463-88db-98f22de89214", "type": "Scope"},
                {"id": "00000000-0000-0000-0000-000000000001", "type": "Role"},
                "User.Read.All",
            )
        ],
    ]

    assert [a.status_code for a in answers] == [400] * len(answers)
    assert all(a.json()["error"] for a in answers)
    assert emulator.control("GET", "directory").json() == before


def test_a_non_finite_clock_advance_is_refused_and_the_clock_keeps_working(emulator, browser):
    for body in (b'{"advance_seconds": NaN}', b'{"advance_seconds": Infinity}', b'{"advance_seconds": 1e400}'):
        response = emulator.http.post("/_emulator/clock", content=body)
        assert response.status_code == 400, body

    assert emulator.redeem(browser.sign_in_through(BEN)["code"]).status_code == 200


def test_a_wrong_method_on_the_control_api_is_a_json_405(emulator):
    response = emulator.http.get("/_emulator/reset")

    assert response.status_code == 405
    assert response.json()["error"]


def test_unknown_things_are_404(emulator):
    assert emulator.control("PATCH", "tenants/nowhere.example", {}).status_code == 404
    assert emulator.control("PATCH", f"tenants/{CONTOSO}/users/nobody@x", {}).status_code == 404
    assert emulator.control("PATCH", "apps/00000000-0000-0000-0000-000000000000", {}).status_code == 404
    assert emulator.control("DELETE", f"tenants/{CONTOSO}/service_principals/{CLIENT_ID}").status_code == 404


def test_the_command_line_refuses_a_broken_directory_file(tmp_path):
    broken = tmp_path / "directory.json"
    broken.write_text(json.dumps({"tenants": [{"id": "nope"}]}))

    result = subprocess.run(
        [sys.executable, "-m", "entra_emulator", "--port", "0", "--directory", str(broken)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "is not valid" in result.stderr


def test_the_command_line_explains_itself():
    result = subprocess.run(
        [sys.executable, "-m", "entra_emulator", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0
    assert "--directory" in result.stdout and "--https" in result.stdout and "--public-url" in result.stdout


def test_the_public_url_sets_the_issuer_and_endpoints(tmp_path):
    process, url = start_emulator(tmp_path, "--public-url", "http://login.emulator.test:8400/")
    try:
        document = httpx.get(f"{url}/{CONTOSO}/v2.0/.well-known/openid-configuration").json()
    finally:
        stop(process)

    assert url.startswith("http://127.0.0.1:")  # it still listens locally
    assert document["issuer"] == f"http://login.emulator.test:8400/{CONTOSO}/v2.0"
    assert document["token_endpoint"] == f"http://login.emulator.test:8400/{CONTOSO}/oauth2/v2.0/token"
