"""The one module that talks to Microsoft: what it makes of each answer, and its configuration."""

import datetime
import time
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenantlink.settings import entra_configuration
from tenantlink.sso import microsoft
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import CachedDocument
from tenantlink.sso.tests.conftest import AUTHORITY, CLIENT_SECRET, CONTOSO, FABRIKAM, aad_error


def test_a_tenant_domain_is_resolved_to_its_id(fake_microsoft):
    assert microsoft.resolve_tenant("contoso.onmicrosoft.com") == CONTOSO
    assert microsoft.resolve_tenant(CONTOSO) == CONTOSO


def failure_of(call):
    with pytest.raises(MicrosoftError) as caught:
        call()
    return caught.value


def test_an_unknown_tenant_is_reported_as_unknown(fake_microsoft):
    error = failure_of(lambda: microsoft.resolve_tenant("nosuch.onmicrosoft.com"))
    assert (error.reason, error.code) == ("unknown_tenant", "AADSTS90002")
    assert "does not know this tenant" in error.message


@pytest.mark.parametrize(
    ("failure", "reason", "code"),
    [
        (httpx.ConnectError("refused"), "unavailable", "ConnectError"),
        (httpx.ReadTimeout("slow"), "unavailable", "timeout"),
        (httpx.Response(503, text="<html>Service Unavailable</html>"), "unavailable", "HTTP 503"),
        (httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "5"}), "unavailable", "HTTP 429"),
        (httpx.Response(500, json={"error": "server_error"}), "unavailable", "server_error"),
        (httpx.Response(200, text="<html>not json</html>"), "bad_answer", "HTTP 200"),
        (httpx.Response(200, json=["a", "list"]), "bad_answer", "HTTP 200"),
        # Nested deeper than Python's parser goes (it raises RecursionError), yet small.
        (httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000), "bad_answer", "HTTP 200"),
        (httpx.Response(200, json={"issuer": "https://evil.example/" + CONTOSO + "/v2.0"}), "bad_answer", "issuer"),
        (
            httpx.Response(200, content=b"{" + b" " * (microsoft.MAX_ANSWER_BYTES + 10)),
            "bad_answer",
            "answer too large",
        ),
    ],
)
def test_microsoft_down_slow_or_answering_garbage_is_one_clear_error(fake_microsoft, failure, reason, code):
    fake_microsoft.fail_with(failure)
    error = failure_of(lambda: microsoft.resolve_tenant("contoso.onmicrosoft.com"))
    assert (error.reason, error.code) == (reason, code)
    assert error.message  # a sentence a page can show


def test_a_token_for_the_tenant_proves_the_app_is_there(fake_microsoft):
    error = failure_of(lambda: microsoft.confirm_app_in_tenant(CONTOSO))
    assert (error.reason, error.code) == ("app_not_found", "AADSTS700016")

    fake_microsoft.app_in.add(CONTOSO)
    microsoft.confirm_app_in_tenant(CONTOSO)

    form = fake_microsoft.requests[-1].content.decode()
    assert "grant_type=client_credentials" in form
    assert "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default" in form


def test_a_refused_client_secret_is_the_operators_problem_and_never_shown(fake_microsoft, settings, caplog):
    settings.ENTRA_CLIENT_SECRET = "an-expired-secret-value"
    fake_microsoft.app_in.add(CONTOSO)
    error = failure_of(lambda: microsoft.confirm_app_in_tenant(CONTOSO))
    assert (error.reason, error.code) == ("configuration", "AADSTS7000215")
    assert "an-expired-secret-value" not in str(error) + error.message
    # The operator reads it in the log, at WARNING, without the secret.
    [line] = [record for record in caplog.records if "answered HTTP" in record.message]
    assert line.levelname == "WARNING"
    assert line.message == f"Microsoft POST {AUTHORITY}/{CONTOSO}/oauth2/v2.0/token answered HTTP 401 AADSTS7000215"
    assert "an-expired-secret-value" not in caplog.text


@pytest.mark.parametrize("code", [70000, 70008, 54005])
def test_an_expired_or_used_code_is_a_refusal_not_a_broken_installation(fake_microsoft, code, caplog):
    fake_microsoft.fail_with(aad_error(400, "invalid_grant", code))
    error = failure_of(lambda: microsoft.redeem_code(CONTOSO, "a-code", "a-verifier"))
    assert (error.reason, error.code) == ("code_expired", f"AADSTS{code}")
    # The person's to retry, not the operator's: logged, but not as a warning.
    assert [record.levelname for record in caplog.records if "answered HTTP 400" in record.message] == ["INFO"]


def test_microsoft_unreachable_is_logged_as_a_warning(fake_microsoft, caplog):
    fake_microsoft.fail_with(httpx.ConnectError("refused"))
    failure_of(lambda: microsoft.confirm_app_in_tenant(CONTOSO))
    assert any(
        record.levelname == "WARNING" and record.message.endswith("/token failed: ConnectError")
        for record in caplog.records
    )


def test_a_token_answer_without_a_token_is_not_a_success(fake_microsoft):
    fake_microsoft.fail_with(httpx.Response(200, json={"token_type": "Bearer"}))
    error = failure_of(lambda: microsoft.confirm_app_in_tenant(CONTOSO))
    assert error.reason == "bad_answer"


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        ("temporarily_unavailable", 50196, "unavailable"),  # try again later, not "refused"
        ("invalid_request", 500112, "configuration"),  # the redirect URI is not the registration's
        ("invalid_request", 50011, "configuration"),
    ],
)
def test_the_token_endpoints_errors_read_as_the_same_errors_elsewhere(fake_microsoft, caplog, error, code, reason):
    fake_microsoft.fail_with(aad_error(400, error, code))
    failure = failure_of(lambda: microsoft.redeem_code(CONTOSO, "a-code", "a-verifier"))
    assert (failure.reason, failure.code) == (reason, f"AADSTS{code}")
    if reason == "configuration":  # the operator's to see
        assert any(record.levelname == "WARNING" and f"AADSTS{code}" in record.message for record in caplog.records)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"error": "invalid_grant", "error_codes": [True]}, "invalid_grant"),
        ({"error": "invalid_grant", "error_codes": [-5]}, "invalid_grant"),
        ({"error": "invalid_grant", "error_description": "AADSTS\u0661\u0662: Arabic-Indic digits"}, "invalid_grant"),
        ({"error": "invalid_grant", "error_description": "AADSTS70008: expired"}, "AADSTS70008"),
    ],
)
def test_only_a_number_microsoft_could_give_is_read_as_its_code(payload, code):
    assert microsoft.error_code(payload) == code


def test_other_token_errors_keep_their_code(fake_microsoft):
    fake_microsoft.fail_with(aad_error(400, "invalid_request", 50059, "No tenant-identifying information found."))
    error = failure_of(lambda: microsoft.confirm_app_in_tenant(CONTOSO))
    assert (error.reason, error.code) == ("refused", "AADSTS50059")


def test_discovery_is_fetched_once_and_shared(fake_microsoft):
    first = microsoft.discovery()
    second = microsoft.discovery()
    assert first == second
    assert len(fake_microsoft.requests) == 1
    assert CachedDocument.objects.count() == 1  # in the database, so every process uses it


def test_each_process_reads_the_shared_copy_at_most_once_a_minute(fake_microsoft, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(microsoft, "_clock", lambda: now[0])
    microsoft.discovery()
    with CaptureQueriesContext(connection) as queries:
        microsoft.discovery()
    assert len(queries) == 0
    # Another process fetched a newer document meanwhile: seen once the minute is over.
    CachedDocument.objects.update(body={**microsoft.discovery(), "msgraph_host": "graph.example.net"})
    now[0] += microsoft.DOCUMENT_MEMO_SECONDS - 1
    assert microsoft.discovery().get("msgraph_host") != "graph.example.net"  # the remembered one
    now[0] += 1
    with CaptureQueriesContext(connection) as queries:
        assert microsoft.discovery()["msgraph_host"] == "graph.example.net"
    assert len(queries) == 1
    assert len(fake_microsoft.requests) == 1


def test_an_old_copy_is_used_when_microsoft_cannot_be_asked(fake_microsoft):
    microsoft.discovery()
    CachedDocument.objects.update(fetched_at=timezone.now() - datetime.timedelta(days=2))
    microsoft._documents.clear()  # a process that has not read it yet
    fake_microsoft.fail_with(httpx.ConnectError("down"))
    assert microsoft.discovery()["issuer"].endswith("/{tenantid}/v2.0")


def test_discovery_pointing_elsewhere_is_refused(fake_microsoft, caplog):
    fake_microsoft.fail_with(
        httpx.Response(
            200,
            json={
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                "authorization_endpoint": "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
                "token_endpoint": "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
                "jwks_uri": "https://attacker.example/keys",
            },
        )
    )
    assert failure_of(lambda: microsoft.discovery()).reason == "bad_answer"
    assert "openid-configuration is not usable: bad_answer: jwks_uri elsewhere" in caplog.text  # for the operator


def test_an_unknown_key_fetches_the_keys_again_but_not_too_often(fake_microsoft):
    assert microsoft.signing_key("key-1", CONTOSO)["kid"] == "key-1"
    fetched = len(fake_microsoft.requests)

    # Fetched moments ago: an unknown kid does not make the portal ask again.
    assert failure_of(lambda: microsoft.signing_key("made-up", CONTOSO)).code == "unknown kid"
    assert len(fake_microsoft.requests) == fetched

    # Older than the refetch interval: asked once more, then refused.
    CachedDocument.objects.filter(url__endswith="/keys").update(
        fetched_at=timezone.now() - microsoft.KEY_REFETCH_INTERVAL - datetime.timedelta(seconds=1)
    )
    assert failure_of(lambda: microsoft.signing_key("made-up", CONTOSO)).code == "unknown kid"
    assert len(fake_microsoft.requests) == fetched + 1


def test_keys_microsoft_fails_to_give_are_not_asked_for_again_at_every_sign_in(fake_microsoft, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(microsoft, "_clock", lambda: now[0])
    microsoft.signing_key("key-1", CONTOSO)
    CachedDocument.objects.filter(url__endswith="/keys").update(
        fetched_at=timezone.now() - microsoft.KEY_REFETCH_INTERVAL - datetime.timedelta(seconds=1)
    )
    fake_microsoft.fail_with(httpx.Response(500, json={"error": "server_error"}))
    before = len(fake_microsoft.requests)

    for _ in range(20):  # tokens naming a key nobody publishes, while the keys cannot be fetched
        assert failure_of(lambda: microsoft.signing_key("made-up", CONTOSO)).code == "unknown kid"

    assert len(fake_microsoft.requests) == before + 1
    now[0] += microsoft.DOCUMENT_MEMO_SECONDS  # a minute later, asked again
    failure_of(lambda: microsoft.signing_key("made-up", CONTOSO))
    assert len(fake_microsoft.requests) == before + 2


def test_keys_another_process_fetched_are_used_at_once_without_asking_microsoft(fake_microsoft):
    assert microsoft.signing_key("key-1", CONTOSO)["kid"] == "key-1"  # remembered by this process now
    fetched = len(fake_microsoft.requests)
    # Microsoft rolled its keys, and another process has fetched them into the shared cache.
    keys = CachedDocument.objects.get(url__endswith="/keys")
    keys.body = {"keys": [*keys.body["keys"], {**keys.body["keys"][0], "kid": "key-2"}]}
    keys.save()
    assert microsoft.signing_key("key-2", CONTOSO)["kid"] == "key-2"
    assert len(fake_microsoft.requests) == fetched


def test_a_process_remembers_a_bounded_number_of_documents(fake_microsoft, monkeypatch):
    """Every tenant signing in has a discovery document and keys of its own."""
    monkeypatch.setattr(microsoft, "DOCUMENT_MEMO_SIZE", 3)
    for tenant in (CONTOSO, FABRIKAM, "organizations"):
        microsoft.discovery(tenant)
    microsoft.signing_key("key-1", FABRIKAM)  # Fabrikam's discovery is remembered; its keys are new

    # The oldest went first.
    assert [urlsplit(url).path for url in microsoft._documents] == [
        f"/{FABRIKAM}/v2.0/.well-known/openid-configuration",
        "/organizations/v2.0/.well-known/openid-configuration",
        f"/{FABRIKAM}/discovery/v2.0/keys",
    ]
    # Those past their minute go before any other.
    monkeypatch.setattr(microsoft, "_clock", lambda: time.monotonic() + microsoft.DOCUMENT_MEMO_SECONDS)
    microsoft.discovery(CONTOSO)
    assert [urlsplit(url).path for url in microsoft._documents] == [f"/{CONTOSO}/v2.0/.well-known/openid-configuration"]


@pytest.mark.parametrize("jwks_uri", [f"{AUTHORITY}/organizations/keys\r", f"{AUTHORITY}/" + "k" * 600])
def test_a_discovery_document_with_an_unusable_keys_address_is_refused_and_not_kept(fake_microsoft, jwks_uri):
    """Such an address made every sign-in of the tenant a server error, for as long as it was cached."""
    document = {
        "issuer": f"{AUTHORITY}/{{tenantid}}/v2.0",
        "authorization_endpoint": f"{AUTHORITY}/organizations/oauth2/v2.0/authorize",
        "token_endpoint": f"{AUTHORITY}/organizations/oauth2/v2.0/token",
        "jwks_uri": jwks_uri,
    }
    fake_microsoft.fail_with(httpx.Response(200, json=document))
    assert failure_of(lambda: microsoft.discovery()).code == "jwks_uri unreadable"
    assert not CachedDocument.objects.exists()


def test_a_key_set_stored_where_a_discovery_document_is_read_is_not_used_as_one(fake_microsoft):
    """The cache is by address: a hostile answer could have put keys under a discovery address."""
    url = f"{AUTHORITY}/{CONTOSO}/v2.0/.well-known/openid-configuration"
    CachedDocument.objects.create(
        url=url, body={"keys": [], "jwks_uri": "https://evil.example/keys"}, fetched_at=timezone.now()
    )

    assert microsoft.discovery(CONTOSO)["jwks_uri"] == f"{AUTHORITY}/{CONTOSO}/discovery/v2.0/keys"  # asked afresh
    assert CachedDocument.objects.get(url=url).body["jwks_uri"].startswith(AUTHORITY)


def test_a_document_the_database_cannot_store_is_still_used(fake_microsoft):
    """PostgreSQL stores no NUL character in JSON: such a key set was a server error at every try."""
    fake_microsoft.published[0]["note"] = "\u0000"
    assert microsoft.signing_key("key-1", CONTOSO)["kid"] == "key-1"


def test_the_memo_holds_a_bounded_amount_of_documents(fake_microsoft, monkeypatch):
    monkeypatch.setattr(microsoft, "DOCUMENT_MEMO_BYTES", 600)
    for tenant in (CONTOSO, FABRIKAM, "organizations"):
        microsoft.discovery(tenant)
    assert 0 < sum(entry[3] for entry in microsoft._documents.values()) <= 600
    assert len(microsoft._documents) < 3


def test_the_admin_consent_address_asks_for_exactly_the_sign_in_permissions(fake_microsoft, settings):
    url = microsoft.admin_consent_url(CONTOSO, "the-state")
    assert url.startswith(f"https://login.microsoftonline.com/{CONTOSO}/v2.0/adminconsent?")
    assert "scope=openid%20profile%20email&" in url
    assert (
        f"redirect_uri={settings.SITE_URL.replace(':', '%3A').replace('/', '%2F')}%2Fsso%2Fconsent%2Fcallback%2F" in url
    )
    assert "state=the-state" in url
    assert CLIENT_SECRET not in url


CONFIGURED = {"ENTRA_CLIENT_ID": "4f6b2a8e-3c1d-4e5f-9a7b-8c2d1e0f3a6b", "ENTRA_CLIENT_SECRET": "s3cret"}


def problem_of(**environ):
    return entra_configuration({**CONFIGURED, **environ})[4]


def test_a_complete_configuration_has_no_problem():
    authority, client_id, secret, timeout, problem = entra_configuration(CONFIGURED)
    assert (authority, client_id, secret, timeout, problem) == (
        "https://login.microsoftonline.com",
        CONFIGURED["ENTRA_CLIENT_ID"],
        "s3cret",
        10.0,
        "",
    )


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"ENTRA_CLIENT_ID": ""}, "ENTRA_CLIENT_ID is not set"),
        ({"ENTRA_CLIENT_ID": "two words"}, "ENTRA_CLIENT_ID is malformed"),
        ({"ENTRA_CLIENT_SECRET": ""}, "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_SECRET_FILE) is not set"),
        ({"ENTRA_AUTHORITY": "login.microsoftonline.com"}, "ENTRA_AUTHORITY must be an https address"),
        ({"ENTRA_AUTHORITY": "ftp://login.example"}, "ENTRA_AUTHORITY must be an https address"),
        ({"ENTRA_AUTHORITY": "http://login.example"}, "http only on this machine"),
        ({"ENTRA_HTTP_TIMEOUT": "soon"}, "ENTRA_HTTP_TIMEOUT must be a number"),
        ({"ENTRA_HTTP_TIMEOUT": "0"}, "ENTRA_HTTP_TIMEOUT must be a number"),
        ({"ENTRA_CLIENT_SECRET_FILE": "/nonexistent/secret"}, "Set ENTRA_CLIENT_SECRET or ENTRA_CLIENT_SECRET_FILE"),
    ],
)
def test_a_bad_configuration_names_what_is_wrong(environ, words):
    assert words in problem_of(**environ)


@pytest.mark.parametrize(
    ("typed", "used"),
    [
        ("https://Login.MicrosoftOnline.com/", "https://login.microsoftonline.com"),
        ("HTTPS://LOGIN.MICROSOFTONLINE.COM", "https://login.microsoftonline.com"),
        ("http://LOCALHOST:8400", "http://localhost:8400"),
        ("http://[::1]:8400/", "http://[::1]:8400"),
        ("https://login.example/Some/Path", "https://login.example/Some/Path"),
        ("https://login.microsoftonline.com:443", "https://login.microsoftonline.com"),  # the issuer has no port
        ("http://127.0.0.1:80", "http://127.0.0.1"),
    ],
)
def test_the_authoritys_host_is_used_in_lowercase_as_microsoft_writes_its_issuer(typed, used):
    authority, *_rest, problem = entra_configuration({**CONFIGURED, "ENTRA_AUTHORITY": typed})
    assert (authority, problem) == (used, "")


@pytest.mark.parametrize(
    "typed",
    [
        "https://login.microsoftonline.com/organizations",
        "https://login.microsoftonline.com/common/",
        "https://login.microsoftonline.com/7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        "https://login.microsoftonline.com/organizations/v2.0",
        "http://127.0.0.1:8400/organizations/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/adfs",  # on Microsoft's own host, any path
        "https://login.microsoftonline.com/%6Frganizations",
    ],
)
def test_an_authority_that_names_a_tenant_or_an_endpoint_is_refused(typed):
    """The portal adds the tenant: …/organizations/{tenant}/… is answered with 'not found' only."""
    assert "without a tenant or an endpoint" in problem_of(ENTRA_AUTHORITY=typed)


@pytest.mark.parametrize(
    "typed",
    [
        "https://user:pw@login.example",
        "https://login.example:99999",
        "https://login.example:x",
        "https://login.microsoftonline.com.",  # the issuer names the host without the root's dot
        "https://login.microsoftonline.com\\x",
    ],
)
def test_an_authority_with_a_user_name_or_a_bad_port_is_refused(typed):
    assert "ENTRA_AUTHORITY must be an https address" in problem_of(ENTRA_AUTHORITY=typed)


@pytest.mark.parametrize("typed", ["https://admin:hunter2@login.example", "https://[::1"])
def test_an_authority_that_cannot_be_used_is_refused_without_repeating_it(typed):
    """The problem goes to the log: a password in the address must not."""
    problem = problem_of(ENTRA_AUTHORITY=typed)
    assert "ENTRA_AUTHORITY must be an https address" in problem and "hunter2" not in problem


def test_http_is_allowed_only_on_this_machine():
    for authority in ("http://127.0.0.1:8400", "http://localhost:8400/", "http://[::1]:8400"):
        assert problem_of(ENTRA_AUTHORITY=authority) == "", authority


def test_the_secret_can_come_from_a_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-a-file\n")
    _authority, _id, secret, _timeout, problem = entra_configuration(
        {"ENTRA_CLIENT_ID": CONFIGURED["ENTRA_CLIENT_ID"], "ENTRA_CLIENT_SECRET_FILE": str(path)}
    )
    assert (secret, problem) == ("from-a-file", "")
    missing = {"ENTRA_CLIENT_ID": CONFIGURED["ENTRA_CLIENT_ID"], "ENTRA_CLIENT_SECRET_FILE": str(tmp_path / "nope")}
    assert "ENTRA_CLIENT_SECRET_FILE cannot be read" in entra_configuration(missing)[4]


def test_the_demo_forgets_the_keys_of_an_earlier_emulator():
    """`make demo` starts an emulator with new keys: keys cached by the last run would refuse
    its tokens until the next refetch is allowed."""
    from tenantlink.demo import seed

    CachedDocument.objects.create(
        url="http://127.0.0.1:8400/organizations/discovery/v2.0/keys", body={"keys": []}, fetched_at=timezone.now()
    )
    seed()
    assert not CachedDocument.objects.exists()
