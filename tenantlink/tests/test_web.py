import re
import time

import pytest
from django.core.management import call_command
from django.test import Client

from tenantlink.conftest import PASSWORD, get_under_prefix, run_manage, sign_in


def test_pages_carry_security_headers(client):
    response = client.get("/signin/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"


def test_forms_without_a_csrf_token_are_rejected(member):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 403
    assert "The form has expired" in response.content.decode()


def test_cookies_are_httponly_and_samesite(client, member):
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # SITE_URL is http:// in tests


def test_cookies_are_secure_when_served_over_https(client, member, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = client.post("/signin/", {"username": "bob", "password": PASSWORD})
    assert response.cookies["sessionid"]["secure"]


def test_a_session_ended_while_its_request_ran_says_so(member_client, member, monkeypatch):
    from django.contrib.sessions.backends.base import UpdateError

    from tenantlink.accounts.sessions import SessionStore

    session = member_client.session
    session["last_seen"] -= 120  # the request writes it again
    session.save()

    def signed_out_meanwhile(store, must_create=False):
        raise UpdateError  # what saving a session that another tab's sign-out deleted finds

    monkeypatch.setattr(SessionStore, "save", signed_out_meanwhile)
    response = member_client.get("/portal/")

    assert response.status_code == 400
    page = response.content.decode()
    assert "Signed out meanwhile" in page and "sign in again and check" in page
    assert member.get_full_name() not in page and "Sign out" not in page  # the header names nobody


def test_unknown_pages_get_the_friendly_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_crash_shows_the_friendly_500_without_details(rf):
    from tenantlink.lib.errors import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_health_answers_ok(client):
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_sessions_end_after_the_idle_lifetime(member_client, settings):
    session = member_client.session
    session["last_seen"] = int(time.time()) - settings.SESSION_IDLE_LIFETIME - 1
    session.save()
    response = member_client.get("/portal/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/signin/")
    assert "Your session has ended" in response.content.decode()


def test_a_form_sent_after_signing_out_says_it_was_not_saved(member_client):
    settings_page = member_client.get("/profile/settings/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', settings_page).group(1)
    member_client.post("/signout/", {"csrfmiddlewaretoken": csrf})  # in another tab

    response = member_client.post(
        "/profile/settings/", {"csrfmiddlewaretoken": csrf, "language": "sv", "time_zone": ""}, follow=True
    )

    assert response.redirect_chain[-1][0].startswith("/signin/?next=")
    assert "You are not signed in, so what you sent was not saved." in response.content.decode()
    # A page asked for is just a page: no such words.
    assert "was not saved" not in member_client.get("/profile/", follow=True).content.decode()


def test_sessions_end_after_the_absolute_lifetime(member_client, settings):
    session = member_client.session
    session["signed_in_at"] = int(time.time()) - settings.SESSION_COOKIE_AGE - 1
    session.save()
    assert member_client.get("/portal/").status_code == 302


def test_operator_admin_signs_in_through_the_portal(client, contoso):
    from tenantlink.conftest import make_user

    staff = make_user("operator", None, is_staff=True, is_superuser=True)
    response = client.get("/staff/")
    assert response.url.startswith("/staff/login/")
    assert client.get(response.url).url.startswith("/signin/?next=/staff/")
    sign_in(client, staff)
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/audit/auditevent/").status_code == 200


def test_a_company_without_licence_sees_no_sso(client, outsider):
    sign_in(client, outsider)
    for url in ("/portal/", "/profile/", "/profile/settings/"):
        html = client.get(url).content.decode()
        assert "Microsoft" not in html and "SSO" not in html


def test_migrations_are_complete():
    # Fails when a model changed without a committed migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "perhaps", "must be true or false"),
        ("SESSION_IDLE_LIFETIME", "ten", "whole number"),
        ("DATABASE_URL", "mysql://x/y", "must start with sqlite:// or postgres://"),
        ("DATABASE_URL", "postgres://db/portal?sslmod=require", 'does not know: invalid connection option "sslmod"'),
        ("DATABASE_URL", "postgres://db:five/portal", "port that is not a number"),
        ("DATABASE_URL", "postgres://db/portal?connect_timeout=abc", "DATABASE_URL's connect_timeout must be"),
        ("DATABASE_URL", "postgres://db/portal?sslmode=bogus", "DATABASE_URL's sslmode must be one of"),
        ("DATABASE_URL", "postgres://db/portal?tcp_user_timeout=99999999999", "tcp_user_timeout must be a whole"),
        ("DATABASE_URL", "postgres://db/portal?keepalives_idle=\u0663", "keepalives_idle must be a whole number"),
        ("SITE_URL", "https://portal.example.com#", "SITE_URL must be the address without a path"),
        ("DATABASE_URL", "postgres://db:99999/portal", "port that is not a number from 0 to 65535"),
        ("DATABASE_URL", "postgres://tl@[::1/portal", "DATABASE_URL cannot be read as an address"),
        ("DATABASE_URL", " ", "DATABASE_URL is set but empty"),
        ("SITE_URL", "https://portal.example.com:abc", "SITE_URL has a port that is not a number"),
        ("SITE_URL", "https://a b.example.com", "SITE_URL must be an http"),
        ("SITE_URL", "https://portal.example.com/portal", "SITE_URL must be the address without a path"),
        ("SITE_URL", "https://portal.example.com?x=1", "SITE_URL must be the address without a path"),
        ("DEFAULT_FROM_EMAIL", "not an email", "DEFAULT_FROM_EMAIL must be an email address"),
        ("METRICS_TOKEN", "a token with spaces in it, long enough", "METRICS_TOKEN must be letters, digits"),
        ("EMAIL_PORT", "0", "EMAIL_PORT must be at least 1"),
        ("EMAIL_PORT", "70000", "EMAIL_PORT must be at most 65535"),
        # Accepted, these overflowed the dates they are added to at the first sign-in or purge.
        ("SESSION_ABSOLUTE_LIFETIME", "99999999999999999999", "SESSION_ABSOLUTE_LIFETIME must be at most 315360000"),
        ("THROTTLE_WINDOW", "99999999999999", "THROTTLE_WINDOW must be at most"),
        ("ENTRA_METADATA_LIFETIME", "99999999999999", "ENTRA_METADATA_LIFETIME must be at most"),
        ("AUDIT_RETENTION_DAYS", "99999999", "AUDIT_RETENTION_DAYS must be at most 36500"),
        (
            "FIELD_ENCRYPTION_KEYS",
            "q2DA3Ce5nD1c4FZr-dvLJ2C3o8bqSHvDz2VHNS-DHgo=,not-a-key",
            "key 2 is not a Fernet key",
        ),
        ("DEFAULT_USER_TIME_ZONE", "Mars/Base", "DEFAULT_USER_TIME_ZONE must be a time zone"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be DEBUG, INFO"),
        ("ALLOWED_HOSTS", " , ", "ALLOWED_HOSTS names no host"),
        ("ALLOWED_HOSTS", "http://portal.example.com", "ALLOWED_HOSTS takes host names such as"),
        ("ALLOWED_HOSTS", "portal.example.com:8000", "ALLOWED_HOSTS takes host names such as"),
        ("ALLOWED_HOSTS", "::1", "ALLOWED_HOSTS takes host names such as"),
        ("DATABASE_URL", "sqlite:///", "DATABASE_URL must name the file"),
        ("DATABASE_URL", "sqlite:///:memory:", "DATABASE_URL must name the file"),
        ("SITE_URL", "https://", "SITE_URL must be an http\\(s\\) address, not 'https://'"),
        ("EMAIL_BACKEND", "no.such.Backend", "EMAIL_BACKEND must name an email backend"),
        ("EMAIL_BACKEND", "smtp", "EMAIL_BACKEND must name an email backend"),
        # Counts past any real installation: a typo, or the throttle turned off without a word.
        ("TRUSTED_PROXY_COUNT", "315360000", "TRUSTED_PROXY_COUNT must be at most 16"),
        ("THROTTLE_ACCOUNT_FAILURES", "315360000", "THROTTLE_ACCOUNT_FAILURES must be at most 1000"),
        ("DATABASE_POOL", "315360000", "DATABASE_POOL must be at most 1000"),
        # Too long for the authenticator's QR code: set-up at the first sign-in would fail.
        ("SITE_NAME", "Portal " * 20, "SITE_NAME must be a name of 1 to 100 printable characters"),
        ("SITE_NAME", "Tenant\nlink", "SITE_NAME must be a name of 1 to 100 printable characters"),
        (  # the authenticator's name when TOTP_ISSUER is not set
            "SITE_NAME",
            "The customer portal of Contoso Ltd, Fabrikam Inc and Northwind Traders",
            "SITE_NAME must be a name of 1 to 64",
        ),
        ("TOTP_ISSUER", "x" * 65, "TOTP_ISSUER must be a name of 1 to 64 printable characters"),
    ],
)
def test_bad_settings_fail_loudly(monkeypatch, name, value, message):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import tenantlink.settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        importlib.reload(tenantlink.settings)
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


@pytest.mark.parametrize(
    "secret_key",
    [
        "insecure-development-key-do-not-use",
        "short-but-random-Kq8Zr2",
        "a" * 60 + "b" * 10,
        "ab" * 40,
        "django-insecure-" + "k3#v9xq2m8rz5w7p1n4t6y0b" * 3,  # what startproject writes
    ],
)
def test_a_site_served_over_https_refuses_a_weak_secret_key(monkeypatch, secret_key):
    """Invitation links and the messages cookie are signed with it: a known or guessable key
    forges them."""
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import tenantlink.settings

    monkeypatch.setenv("SITE_URL", "https://portal.example.com")
    monkeypatch.setenv("SECRET_KEY", secret_key)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be at least 50 random characters of your own"):
        importlib.reload(tenantlink.settings)
    monkeypatch.setenv("SECRET_KEY", "Xq3v9" * 10)
    assert importlib.reload(tenantlink.settings).SECRET_KEY == "Xq3v9" * 10
    monkeypatch.setenv("SITE_URL", "http://127.0.0.1:8000")  # the demo's: the development key will do
    monkeypatch.setenv("SECRET_KEY", "insecure-development-key-do-not-use")
    assert importlib.reload(tenantlink.settings).SERVED_OVER_HTTPS is False
    # Behind a proxy that ends TLS with SITE_URL mistakenly http: still a site people reach.
    monkeypatch.setenv("SITE_URL", "http://portal.example.com")
    monkeypatch.delenv("DEBUG", raising=False)
    for weak in (secret_key, "insecure-development-key-do-not-use"):
        monkeypatch.setenv("SECRET_KEY", weak)
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be at least 50 random characters of your own"):
            importlib.reload(tenantlink.settings)
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


def test_a_sqlite_busy_timeout_sqlite_cannot_hold_is_refused(monkeypatch, tmp_path):
    """Above 2^31 ms SQLite wrapped it to no wait at all: every write meeting another one failed."""
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import tenantlink.settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/portal.sqlite3")
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT", "2147484")
    with pytest.raises(ImproperlyConfigured, match="SQLITE_BUSY_TIMEOUT must be at most 3600"):
        importlib.reload(tenantlink.settings)
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


@pytest.mark.parametrize(
    "url",
    [
        '"postgres://app:S3cretPassw0rd@db.example:5432/tenantlink"',  # quotes an env file kept
        "//app:S3cretPassw0rd@db.example/tenantlink",
        "postgres://app:S3cretPassw0rd\uff20x@db.example/tenantlink",  # a full-width @ in the password
        "mysql://app:S3cretPassw0rd@db.example/tenantlink",
    ],
)
def test_a_database_address_that_cannot_be_used_is_refused_without_its_password(monkeypatch, url):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import tenantlink.settings

    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as refused:
        importlib.reload(tenantlink.settings)
    assert "S3cret" not in str(refused.value) and "app:" not in str(refused.value)
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


def test_over_https_the_session_and_csrf_cookies_are_this_hosts_only(monkeypatch):
    import importlib

    import tenantlink.settings

    for site, names in (
        ("https://portal.example.com", ("__Host-sessionid", "__Host-csrftoken")),
        ("http://127.0.0.1:8000", ("sessionid", "csrftoken")),
    ):
        monkeypatch.setenv("SITE_URL", site)
        production = importlib.reload(tenantlink.settings)
        used = (production.SESSION_COOKIE_NAME, production.CSRF_COOKIE_NAME)
        assert used == names, site
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


def test_host_only_cookies_are_what_browsers_take_with_that_prefix(client, member, settings):
    """Secure, Path=/ and no Domain, or a browser drops a __Host- cookie."""
    settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME = "__Host-sessionid", "__Host-csrftoken"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client.get("/signin/")
    response = client.post("/signin/", {"username": member.username, "password": PASSWORD}, secure=True)

    for name in ("__Host-sessionid", "__Host-csrftoken"):
        cookie = response.cookies.get(name) or client.cookies[name]
        assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"], name


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "PGCONNECT_TIMEOUT",
            "abc",
            "PGCONNECT_TIMEOUT must be a whole number of seconds (at most 999999999), not 'abc'",
        ),
        ("PGCONNECT_TIMEOUT", "9999999999", "PGCONNECT_TIMEOUT must be a whole number of seconds (at most 999999999)"),
        ("DATABASE_POOL", "abc", "DATABASE_POOL must be a whole number, not 'abc'"),
        ("SQLITE_BUSY_TIMEOUT", "abc", "SQLITE_BUSY_TIMEOUT must be a whole number, not 'abc'"),
    ],
)
@pytest.mark.parametrize(
    "url", ["postgres://tl@db.example/portal", "postgres:///portal?service=portal", "sqlite:////tmp/portal.sqlite3"]
)
def test_a_database_variable_that_cannot_be_read_is_refused_whichever_database_is_named(
    monkeypatch, url, name, value, message
):
    """Not only once the operator moves to the database it is for."""
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import tenantlink.settings

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        importlib.reload(tenantlink.settings)
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


def test_an_sqlite_folder_that_cannot_be_made_is_named():
    from django.core.exceptions import ImproperlyConfigured

    from tenantlink.settings import database_from_url

    with pytest.raises(
        ImproperlyConfigured, match=r"DATABASE_URL names a file in a folder this process cannot create: /proc/no"
    ):
        database_from_url("sqlite:////proc/no/such/portal.sqlite3")


def test_emails_go_to_a_mail_server_unless_developing(monkeypatch):
    """Printed to standard output, an invitation's link would be in the production log."""
    import importlib

    import tenantlink.settings

    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    for debug, backend in (("false", "smtp"), ("true", "console")):
        monkeypatch.setenv("DEBUG", debug)
        used = importlib.reload(tenantlink.settings).EMAIL_BACKEND
        assert used == f"django.core.mail.backends.{backend}.EmailBackend"
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


def test_the_demo_prints_its_emails(monkeypatch):
    from tenantlink.demo import demo_environment

    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    assert demo_environment(8000, 8400)["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_the_demo_never_runs_on_an_installations_database_or_microsoft(monkeypatch):
    """Its seeding resets accounts and makes oscar (password in the README) a superuser."""
    from tenantlink.demo import DEMO_CLIENT_ID, demo_environment

    for name, value in {
        "DATABASE_URL": "postgres://portal:secret@db.internal/tenantlink",
        "SITE_URL": "https://portal.example.com",
        "ENTRA_AUTHORITY": "https://login.microsoftonline.com",
        "ENTRA_CLIENT_ID": "the-installations-app",
        "ENTRA_CLIENT_SECRET_FILE": "/etc/tenantlink/entra-secret",
        "SECRET_KEY": "the-installations-own-secret-key-" * 3,
        "SECURE_SSL_REDIRECT": "true",
        "HTTPS_PROXY": "http://proxy.internal:3128",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEMO_DATABASE_URL", raising=False)
    env = demo_environment(8000, 8400)
    assert "DATABASE_URL" not in env  # the default SQLite file
    assert (env["SITE_URL"], env["ENTRA_AUTHORITY"]) == ("http://127.0.0.1:8000", "http://127.0.0.1:8400")
    assert env["ENTRA_CLIENT_ID"] == DEMO_CLIENT_ID and "ENTRA_CLIENT_SECRET_FILE" not in env
    assert "the-installations-own" not in env["SECRET_KEY"] + env["FIELD_ENCRYPTION_KEYS"]
    assert "SECURE_SSL_REDIRECT" not in env and "HTTPS_PROXY" not in env

    monkeypatch.setenv("DEMO_DATABASE_URL", "sqlite:///tmp/demo.sqlite3")
    assert demo_environment(8000, 8400)["DATABASE_URL"] == "sqlite:///tmp/demo.sqlite3"


def test_postgres_keeps_a_connection_per_thread_unless_a_pool_is_asked_for(monkeypatch):
    from tenantlink.settings import database_from_url

    url = "postgres://portal:secret@db.internal:5432/tenantlink"
    assert database_from_url(url)["CONN_MAX_AGE"] == 60
    assert "pool" not in database_from_url(url).get("OPTIONS", {})

    monkeypatch.setenv("DATABASE_POOL", "4")
    database = database_from_url(url)
    assert database["CONN_MAX_AGE"] == 0 and database["CONN_HEALTH_CHECKS"]
    assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 5}


def test_postgres_address_keeps_the_host_as_written_and_passes_libpq_options_on(monkeypatch):
    from tenantlink.settings import database_from_url

    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)

    database = database_from_url(
        "postgres://portal@DB.Internal:6432/tenantlink?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    )
    assert (database["HOST"], database["PORT"]) == ("DB.Internal", "6432")
    # A server that does not answer is given up after seconds, not the system's hours.
    tcp = {
        "keepalives": "1",
        "keepalives_idle": "5",
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": "10000",
    }
    assert database["OPTIONS"] == {
        **tcp,
        "connect_timeout": "10",
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
    }
    given = database_from_url("postgres://db/tenantlink?connect_timeout=3&tcp_user_timeout=30000")["OPTIONS"]
    assert given == {**tcp, "connect_timeout": "3", "tcp_user_timeout": "30000"}
    # A pg_service.conf entry or PGCONNECT_TIMEOUT says how long to wait: no default overrides it.
    assert database_from_url("postgres:///tenantlink?service=portal")["OPTIONS"] == {"service": "portal"}
    assert database_from_url("postgres://portal@%2Fvar%2Frun%2Fpostgresql/tenantlink")["HOST"] == "/var/run/postgresql"
    assert database_from_url("postgres://[::1]:5433/tenantlink")["HOST"] == "::1"
    assert database_from_url("postgres://db.internal:/tenantlink")["HOST"] == "db.internal"
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    assert "connect_timeout" not in database_from_url("postgres://db.internal/tenantlink")["OPTIONS"]


def test_health_probes_and_scrapers_are_not_sent_to_https(client, settings):
    # A probe or Prometheus comes straight to the instance over plain HTTP; the rest is redirected.
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_TOKEN = "t" * 32
    assert client.get("/health/live/").status_code == 200
    assert client.get("/health/ready/").status_code == 200
    for path in ("/metrics", "/metrics/leavers"):
        assert client.get(path, HTTP_AUTHORIZATION="Bearer " + "t" * 32).status_code == 200
    assert client.get("/signin/")["Location"] == "https://testserver/signin/"
    assert client.get("/metricsx")["Location"] == "https://testserver/metricsx"


def test_bad_microsoft_settings_do_not_stop_the_portal(monkeypatch):
    """Single sign-on is an extra: a typo in its settings switches it off, not the portal."""
    import importlib

    import tenantlink.settings

    monkeypatch.setenv("ENTRA_AUTHORITY", "http://login.example.com")
    monkeypatch.setenv("ENTRA_HTTP_TIMEOUT", "soon")
    reloaded = importlib.reload(tenantlink.settings)
    assert "ENTRA_AUTHORITY may use http only on this machine" in reloaded.ENTRA_CONFIGURATION_PROBLEM
    assert "ENTRA_HTTP_TIMEOUT must be a number" in reloaded.ENTRA_CONFIGURATION_PROBLEM
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)


@pytest.mark.parametrize(
    "url",
    [
        "/portal/",
        "/profile/",
        "/profile/settings/",
        "/profile/password/",
        "/company/users/",
        "/company/audit/",
        "/company/sso/",
    ],
)
def test_every_page_has_a_plain_title_and_one_main_heading(admin_client, url):
    html = admin_client.get(url).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<" not in title and title.endswith("· Tenantlink")
    assert html.count("<h1") == 1


def test_a_wrong_method_gets_the_friendly_page(member_client):
    response = member_client.get("/signout/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "This page cannot be used that way" in response.content.decode()


def test_an_email_backend_class_that_does_not_exist_stops_the_start(settings):
    from django.core.exceptions import ImproperlyConfigured

    from tenantlink.accounts.apps import check_email_backend

    for wrong in (
        "django.core.mail.backends.smtp.NoSuchBackend",  # its module exists
        "django.core.mail.backends.smtp.ssl",  # a module the backend's module imports
        "django.core.mail.message.EmailMessage",  # a class, but no backend
    ):
        settings.EMAIL_BACKEND = wrong
        with pytest.raises(ImproperlyConfigured, match="EMAIL_BACKEND names no email backend class that exists"):
            check_email_backend()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    check_email_backend()


def test_the_portal_does_not_start_with_such_an_email_backend():
    import os

    result = run_manage("check", env={**os.environ, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackendd"})

    assert result.returncode != 0
    assert result.stderr.startswith(
        "Tenantlink cannot start: EMAIL_BACKEND names no email backend class that exists: 'django.core.mail.backends.smtp.EmailBackendd'"
    )
    assert "Traceback" not in result.stderr


def test_production_settings_pass_djangos_deployment_checks():
    import os

    env = {
        "PATH": os.environ.get("PATH", ""),
        "SECRET_KEY": "a-production-like-secret-key-with-enough-length-and-variety-0123456789",
        "FIELD_ENCRYPTION_KEYS": "q2DA3Ce5nD1c4FZr-dvLJ2C3o8bqSHvDz2VHNS-DHgo=",
        "SITE_URL": "https://portal.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr


def _links(page):
    return dict(re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', page))


def test_the_layout_links_every_section_and_marks_the_current_one(admin_client):
    page = admin_client.get("/portal/").content.decode()
    links = _links(page)
    for path, text in (
        ("/portal/", "Portal"),
        ("/profile/", "My Profile"),
        ("/company/users/", "Users"),
        ("/company/sso/", "Single sign-on"),
        ("/company/audit/", "Audit log"),
    ):
        assert links.get(path) == text
    assert '<a href="/portal/" aria-current="page">Portal</a>' in page
    assert 'action="/signout/"' in page
    for path, link, text, marked in (
        ("/profile/settings/", "/profile/", "My Profile", 2),  # and the profile's Settings tab
        ("/company/sso/", "/company/sso/", "Single sign-on", 1),
    ):
        page = admin_client.get(path).content.decode()
        assert f'<a href="{link}" aria-current="page">{text}</a>' in page
        assert page.count('aria-current="page"') == marked


def test_the_layout_links_follow_the_script_prefix(admin_client):
    # The layout's addresses are worked out once per prefix.
    admin_client.get("/portal/")
    page, users = (answer.content.decode() for answer in get_under_prefix(admin_client, "/portal/", "/company/users/"))
    assert _links(page).get("/app/company/users/") == "Users" and 'action="/app/signout/"' in page
    assert _links(admin_client.get("/portal/").content.decode()).get("/company/users/") == "Users"
    # The current section is marked under the prefix too.
    assert '<a href="/app/company/users/" aria-current="page">Users</a>' in users
    assert users.count('aria-current="page"') == 1


def wsgi_request(method, path):
    """(status, headers, body) of a request to the WSGI application itself, as gunicorn calls it:
    Django's test client drops a HEAD response's body by itself, so it would not show one sent."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test.client import FakePayload

    answer = {}
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": FakePayload(b""),
        "wsgi.errors": None,
    }
    # As Django's test client does: the test's own database connection (and its transaction) stays.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = WSGIHandler()(environ, lambda status, headers: answer.update(status=status, headers=dict(headers)))
        try:
            return answer["status"], answer["headers"], b"".join(body)
        finally:
            body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("path", ["/signin/", "/health/live/", "/static/tenantlink/forms.js", "/invitation/MQ/a-b/"])
def test_head_is_answered_as_get_without_a_body(db, path):
    """Uptime monitors and link checkers send HEAD: not a 405 page and two warnings for it, and
    no body that gunicorn would drop with a warning of its own."""
    from tenantlink.lib.metrics import REGISTRY

    def counted():
        return (
            REGISTRY.get_sample_value(
                "tenantlink_request_duration_seconds_count",
                {"view": "signin", "method": "HEAD", "status": "2xx"},
            )
            or 0
        )

    before = counted()
    get_status, get_headers, get_body = wsgi_request("GET", path)
    status, headers, body = wsgi_request("HEAD", path)
    assert status == get_status and status.split()[0] in ("200", "302"), status
    assert body == b""
    assert get_body != b"" or status.startswith("302")
    assert headers.get("Content-Type") == get_headers.get("Content-Type")
    if path == "/signin/":
        assert counted() == before + 1  # labelled HEAD, as it came


def test_a_page_whose_get_uses_something_up_refuses_head(db):
    """Microsoft's answer is redeemed once (so are new recovery codes shown once, whose HEAD
    test_profile tries signed in): a link checker's HEAD must not do that instead of the GET."""
    status, headers, body = wsgi_request("HEAD", "/sso/callback/")
    assert status.startswith("405") and headers["Allow"].startswith("GET") and body == b""


def test_a_site_at_an_ipv6_address_accepts_requests_for_it(monkeypatch):
    """Django compares a request's host with brackets: [::1], not ::1."""
    import importlib

    from django.http.request import validate_host

    import tenantlink.settings

    monkeypatch.setenv("SITE_URL", "http://[::1]:8000")
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    try:
        assert validate_host("[::1]", importlib.reload(tenantlink.settings).ALLOWED_HOSTS)
    finally:
        monkeypatch.undo()
        importlib.reload(tenantlink.settings)
