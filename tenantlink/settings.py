"""Tenantlink settings, read from environment variables.

Every variable is listed in the README. The helpers below fail loudly at start-up on a value
they cannot read, so a typo never turns into a silently insecure default.
"""

import email.utils
import importlib.util
import ipaddress
import os
import re
import warnings
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from cryptography.fernet import Fernet
from django.core.checks.security.base import (  # what check --deploy asks of a SECRET_KEY
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from tenantlink.lib.crypto import DEVELOPMENT_SECRET_KEY

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=None):
    value = os.environ.get(name, "")
    if value == "":
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} must be set.")
        return default
    return value


def env_bool(name, default):
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


# The largest number a setting takes unless it says otherwise: ten years in seconds. Larger
# lifetimes and windows overflow the dates they are added to, at the first request that does.
LARGEST_NUMBER = 10 * 365 * 24 * 3600


def env_int(name, default, minimum=0, maximum=LARGEST_NUMBER):
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}.")
    if number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {number}.")
    return number


def env_list(name, default):
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def database_from_url(url):
    """Turn DATABASE_URL (sqlite:///path or postgres://user:pass@host:port/name) into settings."""
    # No message here repeats the address, or Python's words about it: they may hold the password,
    # and the message goes to the log.
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [IPv6 address], characters that normalise to @ : / ? #
        raise ImproperlyConfigured(
            "DATABASE_URL cannot be read as an address: check the brackets of an IPv6 host, and "
            "percent-encode special characters in the user name and password."
        ) from None
    # Read whichever database is named, so that a wrong value is found before it is needed.
    busy_timeout = env_int("SQLITE_BUSY_TIMEOUT", 20, minimum=1, maximum=3600)  # SQLite wraps above 2^31 ms
    pool_size = env_int("DATABASE_POOL", 0, maximum=1000)
    connect_timeout = os.environ.get("PGCONNECT_TIMEOUT", "").strip()
    if connect_timeout and not LIBPQ_NUMBER.fullmatch(connect_timeout):  # libpq would refuse every connection
        raise ImproperlyConfigured(
            f"PGCONNECT_TIMEOUT must be a whole number of seconds (at most 999999999), not {connect_timeout!r}."
        )
    if parts.scheme == "sqlite":
        if parts.query:
            raise ImproperlyConfigured("DATABASE_URL for SQLite takes no options after '?'.")
        path = Path(unquote(parts.path[1:]) if parts.path.startswith("//") else unquote(parts.path))
        if not parts.path or path.is_dir() or path.name == ":memory:":  # one database per connection
            raise ImproperlyConfigured("DATABASE_URL must name the file: sqlite:///path/to/db.sqlite3.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # so a fresh clone just runs
        except OSError as error:
            raise ImproperlyConfigured(
                f"DATABASE_URL names a file in a folder this process cannot create: {path.parent} ({error.strerror})."
            ) from None
        # So that several worker processes can write at once: WAL lets readers go on while one
        # writes; IMMEDIATE takes the write lock when a transaction begins, so a writer waits
        # for it (up to the busy timeout) instead of failing with "database is locked" when a
        # read lock cannot be upgraded; the timeout also covers writes outside transactions.
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": busy_timeout,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
            # Each thread keeps its connection across requests instead of opening the file and
            # running the commands above for every request.
            "CONN_MAX_AGE": 60,
        }
    if parts.scheme in ("postgres", "postgresql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured("DATABASE_URL must name the database: postgres://host/NAME.")
        port = _port("DATABASE_URL", parts)
        database = {
            "ENGINE": "tenantlink.lib.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": _host(parts),
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            # libpq's own options after '?': sslmode=verify-full, sslrootcert=…, host=/socket/folder…
            "OPTIONS": _libpq_options(parts.query),
        }
        if pool_size:
            # At most `pool_size` connections per process, shared by its threads (a thread waits
            # for one up to 5 s), instead of one persistent connection per thread. With
            # CONN_HEALTH_CHECKS each is checked before use, so connections broken by a database
            # restart are replaced.
            database["CONN_MAX_AGE"] = 0  # the pool keeps the connections
            database["OPTIONS"]["pool"] = {"min_size": 1, "max_size": pool_size, "timeout": 5}
        return database
    if parts.scheme and parts.scheme.isascii() and parts.scheme.replace("+", "").isalnum():
        raise ImproperlyConfigured(f"DATABASE_URL must start with sqlite:// or postgres://, not {parts.scheme}://.")
    raise ImproperlyConfigured(
        "DATABASE_URL must start with sqlite:// or postgres:// (without quotes around it: an env file "
        "for containers keeps them as part of the value)."
    )


def _port(name, parts):
    """The port of an address read from the variable `name`, or None when it has none."""
    try:
        return parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number from 0 to 65535.") from None


def _host(parts):
    """The host as written, not lowercased, and decoded: a socket folder may be given as
    %2Fvar%2Frun%2Fpostgresql."""
    host = re.sub(r":\d*$", "", parts.netloc.rpartition("@")[2])  # without ":5432" (or a bare ":")
    return unquote(host.removeprefix("[").removesuffix("]"))


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
LIBPQ_NUMBER = re.compile(r"[0-9]{1,9}")  # what libpq reads as a number of seconds or times


def _libpq_options(query):
    options = dict(parse_qsl(query, keep_blank_values=True))
    if options:
        from psycopg import ProgrammingError
        from psycopg.conninfo import make_conninfo

        try:
            make_conninfo("", **options)  # libpq knows every name?
        except ProgrammingError as error:
            raise ImproperlyConfigured(
                f"DATABASE_URL has an option PostgreSQL does not know: {str(error).strip()}"
            ) from None
    # Values libpq reads only when it connects: wrong, every request fails, looking like an outage.
    for name in ("connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"):
        if name in options and not LIBPQ_NUMBER.fullmatch(options[name].strip()):
            raise ImproperlyConfigured(f"DATABASE_URL's {name} must be a whole number, not {options[name]!r}.")
    if options.get("sslmode", "prefer") not in SSL_MODES:
        raise ImproperlyConfigured(f"DATABASE_URL's sslmode must be one of {', '.join(SSL_MODES)}.")
    # libpq waits for a connection without end, and on an open one for as long as TCP says it
    # is alive (hours, by the system's defaults): a server host that froze, or a network that
    # drops packets, then holds every request (and worker thread) that needs it, instead of their
    # getting the 503 page. Given up here: no connection after 10 s, data not acknowledged for
    # 10 s, or three keepalives 5 s apart unanswered while waiting for an answer (the server's
    # kernel answers those, so a query that is only slow is not cut). Unless the URL says, or a
    # pg_service.conf entry (which an explicit value would override) does.
    if "service" in options:
        return options
    defaults = {
        "keepalives": "1",
        "keepalives_idle": "5",
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": "10000",
    }
    if not os.environ.get("PGCONNECT_TIMEOUT", "").strip():  # libpq reads it itself (checked above)
        defaults["connect_timeout"] = "10"
    return {**defaults, **options}


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The last part of an authority's path that names a tenant (MSAL and many guides write
# https://login.microsoftonline.com/organizations as "the authority") or an endpoint: the portal
# would then ask …/organizations/{tenant}/…, which Microsoft answers with "not found" only.
_TENANT_OR_ENDPOINT = re.compile(
    r"(common|organizations|consumers|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[^/]*\.[^/]*|oauth2|v2\.0)",
    re.IGNORECASE,
)


# Microsoft's own hosts (its public and national clouds): the authority is the host alone.
MICROSOFT_LOGIN_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.windows.net",
    "sts.windows.net",
}


def _names_a_tenant_or_endpoint(host, path):
    if host in MICROSOFT_LOGIN_HOSTS and path.strip("/"):
        return True
    return any(_TENANT_OR_ENDPOINT.fullmatch(unquote(part)) for part in path.split("/"))


def entra_configuration(environ):
    """The platform's Microsoft app registration: (authority, client ID, client secret, timeout,
    problem). `problem` is "" when single sign-on can be used, otherwise what is wrong."""
    authority = environ.get("ENTRA_AUTHORITY", "").strip().rstrip("/") or "https://login.microsoftonline.com"
    client_id = environ.get("ENTRA_CLIENT_ID", "").strip()
    secret = environ.get("ENTRA_CLIENT_SECRET", "")
    secret_file = environ.get("ENTRA_CLIENT_SECRET_FILE", "").strip()
    problems = []
    must = "ENTRA_AUTHORITY must be an https address such as https://login.microsoftonline.com"
    try:
        parts = urlsplit(authority)
        port = parts.port
    except ValueError:  # an unclosed [IPv6 address], a port past 65535
        parts = port = None
    if parts is None:
        problems.append(f"{must}, with a port from 0 to 65535 and any IPv6 host in brackets.")
    elif "@" in parts.netloc:  # not repeated: what stands before the @ may be a password
        problems.append(f"{must}, without a user name or password.")
    elif parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        problems.append(f"{must}, not {authority!r}.")
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        problems.append("ENTRA_AUTHORITY may use http only on this machine (127.0.0.1, ::1, localhost).")
    elif _names_a_tenant_or_endpoint(parts.hostname, parts.path):
        problems.append(
            f"ENTRA_AUTHORITY is the identity platform's address without a tenant or an endpoint, such as "
            f"https://login.microsoftonline.com, not {authority!r}: the portal adds the tenant itself."
        )
    elif not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", parts.hostname) or parts.hostname.endswith("."):
        problems.append(f"{must}, with a plain host name, not {authority!r}.")
    else:
        # The host in lowercase, and no default port, as Microsoft writes it in the issuer that
        # tokens are compared with exactly: https://Login.MicrosoftOnline.com:443 is the same address.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if port == {"https": 443, "http": 80}[parts.scheme]:
            port = None
        authority = urlunsplit((parts.scheme, host + (f":{port}" if port else ""), parts.path, "", ""))
    if not client_id:
        problems.append("ENTRA_CLIENT_ID is not set.")
    elif len(client_id) > 200 or not client_id.isprintable() or " " in client_id:
        problems.append("ENTRA_CLIENT_ID is malformed.")
    if secret and secret_file:
        problems.append("Set ENTRA_CLIENT_SECRET or ENTRA_CLIENT_SECRET_FILE, not both.")
    elif secret_file:
        try:
            secret = Path(secret_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(f"ENTRA_CLIENT_SECRET_FILE cannot be read ({error.__class__.__name__}).")
    if not secret and not problems:
        problems.append("ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_SECRET_FILE) is not set.")
    timeout_text = environ.get("ENTRA_HTTP_TIMEOUT", "").strip() or "10"
    try:
        timeout = float(timeout_text)
        if not 0.1 <= timeout <= 120:
            raise ValueError
    except ValueError:
        timeout = 10.0
        problems.append(f"ENTRA_HTTP_TIMEOUT must be a number of seconds between 0.1 and 120, not {timeout_text!r}.")
    return authority, client_id, secret, timeout, " ".join(problems)


DEBUG = env_bool("DEBUG", False)

# Development and tests may run without a SECRET_KEY; production must set one.
SECRET_KEY = env_str("SECRET_KEY", DEVELOPMENT_SECRET_KEY if DEBUG else None)

# The address people use to reach the portal, without a trailing slash. It decides whether
# cookies are marked Secure and which origin CSRF accepts.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")


def env_name(name, default, longest):
    """A name shown to people: printable, and short enough for a title (and a QR code)."""
    value = env_str(name, default).strip()
    if not value or not value.isprintable() or len(value) > longest:
        raise ImproperlyConfigured(f"{name} must be a name of 1 to {longest} printable characters.")
    return value


SITE_NAME = env_name("SITE_NAME", "Tenantlink", 100)
try:
    _site = urlsplit(SITE_URL)
except ValueError:
    _site = urlsplit("")
if _site.scheme not in ("http", "https") or not _site.hostname or re.search(r"\s", SITE_URL):
    raise ImproperlyConfigured(f"SITE_URL must be an http(s) address, not {os.environ.get('SITE_URL', '')!r}.")
if _site.path or _site.query or _site.fragment or SITE_URL[-1] in "?#":  # the pages are at the root
    raise ImproperlyConfigured(f"SITE_URL must be the address without a path, such as https://{_site.netloc}.")
_port("SITE_URL", _site)
SERVED_OVER_HTTPS = _site.scheme == "https"
# Whoever knows or guesses SECRET_KEY can forge what it signs (invitation links, the bond of a
# session to its user's password, the messages cookie). A site people reach (over HTTPS, or at
# an address not on this machine without DEBUG) is a real one: its key must be long and random
# (Django's own measure in check --deploy). The published development key, and short ones, are
# for DEBUG and for the demo and local trials on this machine only.
if (SERVED_OVER_HTTPS or (not DEBUG and not _is_loopback(_site.hostname))) and (
    SECRET_KEY == DEVELOPMENT_SECRET_KEY
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
    or len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 random characters of your own on a site people reach; make one "
        'with python3 -c "import secrets; print(secrets.token_urlsafe(50))".'
    )

_site_host = f"[{_site.hostname}]" if ":" in _site.hostname else _site.hostname  # IPv6, as Django matches it
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{_site_host},127.0.0.1,localhost")
if not ALLOWED_HOSTS:  # "," or " , ": every request, probes included, would get 400
    raise ImproperlyConfigured("ALLOWED_HOSTS names no host: give the portal's host names, separated by commas.")
for _allowed in ALLOWED_HOSTS:
    # An address or a port (Django compares the host without its port; IPv6 in brackets has no
    # port here either): no request would ever match it.
    if re.search(r"[/\s@]", _allowed) or (":" in _allowed and not re.fullmatch(r"\[[0-9a-fA-F:.]+\]", _allowed)):
        raise ImproperlyConfigured(
            f"ALLOWED_HOSTS takes host names such as portal.example.com, without scheme, port or path, "
            f"not {_allowed!r}."
        )
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

# How many reverse proxies in front of the portal append to X-Forwarded-For. With 0 the client
# address is the TCP peer; never trust the header without a proxy that sets it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, maximum=16)
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tenantlink.companies",
    "tenantlink.accounts",
    "tenantlink.audit",
    "tenantlink.sso",
    "tenantlink.ops",
]

MIDDLEWARE = [
    "tenantlink.lib.logs.request_ids",
    "tenantlink.lib.metrics.request_metrics",
    "django.middleware.security.SecurityMiddleware",
    "tenantlink.lib.middleware.security_headers",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenantlink.lib.middleware.head_as_get",
    "tenantlink.accounts.middleware.Sessions",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "tenantlink.accounts.middleware.Authentication",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenantlink.lib.middleware.refuse_nul_characters",
    "tenantlink.lib.middleware.session_lifetime",
    "tenantlink.lib.middleware.user_locale",
    "tenantlink.accounts.middleware.require_password_change",
    "tenantlink.sso.middleware.microsoft_required",
    "tenantlink.sso.middleware.microsoft_sessions",
    "tenantlink.lib.middleware.friendly_405",
    "tenantlink.lib.middleware.signed_out_form",
    "tenantlink.lib.middleware.unavailable",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tenantlink.urls"
WSGI_APPLICATION = "tenantlink.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tenantlink" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenantlink.lib.context.site",
                "tenantlink.sso.context.microsoft_signin",
            ],
        },
    },
]
# Django's form templates, except that single inputs and selects are written directly (same HTML).
FORM_RENDERER = "tenantlink.lib.forms.Renderer"

if "DATABASE_URL" in os.environ and not os.environ["DATABASE_URL"].strip():
    # Set, but to nothing: more likely a secret that did not arrive than a wish for SQLite.
    raise ImproperlyConfigured("DATABASE_URL is set but empty. Give the database's address, or unset it for SQLite.")
DATABASES = {"default": database_from_url(env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# ModelBackend, with the user's company fetched with the user on every request.
AUTHENTICATION_BACKENDS = ["tenantlink.accounts.backends.AccountBackend"]
LOGIN_URL = "signin"
LOGIN_REDIRECT_URL = "portal"

# Argon2id with the OWASP minimum: m = 19 MiB, t = 2, p = 1 (see tenantlink/lib/hashers.py).
PASSWORD_HASHERS = ["tenantlink.lib.hashers.Argon2idHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "tenantlink.accounts.validators.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "tenantlink.accounts.validators.SignInFormValidator"},
    {"NAME": "tenantlink.accounts.validators.VarietyValidator"},
]
PASSWORD_RESET_TIMEOUT = env_int("INVITATION_LIFETIME", 3 * 24 * 3600, minimum=600)

# Sessions: an absolute lifetime (the cookie and server-side expiry) and an idle lifetime
# enforced by tenantlink.lib.middleware.session_lifetime.
SESSION_ENGINE = "tenantlink.accounts.sessions"  # database sessions, read with their user
SESSION_COOKIE_AGE = env_int("SESSION_ABSOLUTE_LIFETIME", 12 * 3600, minimum=300)
SESSION_IDLE_LIFETIME = env_int("SESSION_IDLE_LIFETIME", 30 * 60, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_FAILURE_VIEW = "tenantlink.lib.errors.csrf_failure"
LANGUAGE_COOKIE_SECURE = SERVED_OVER_HTTPS
# Over HTTPS with the __Host- prefix: browsers then take these cookies only from this very host,
# over HTTPS, for the whole site, so that a sibling subdomain cannot plant a session or CSRF
# cookie of its own ("cookie tossing": a victim signed in to the attacker's account).
_HOST_ONLY = "__Host-" if SERVED_OVER_HTTPS else ""
SESSION_COOKIE_NAME = f"{_HOST_ONLY}sessionid"
CSRF_COOKIE_NAME = f"{_HOST_ONLY}csrftoken"
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"

# Sign-in: how long the half-finished sign-in (password done, second factor pending) lives,
# how long a sign-in counts as "recent" for sensitive changes, and the brute-force throttles.
SIGNIN_PENDING_LIFETIME = env_int("SIGNIN_PENDING_LIFETIME", 5 * 60, minimum=30)
# How long a flow at Microsoft (admin consent, connecting, signing in) may take before its
# `state` expires, and how long discovery documents and keys are reused before being fetched again.
SSO_PENDING_LIFETIME = env_int("SSO_PENDING_LIFETIME", 10 * 60, minimum=60)
ENTRA_METADATA_LIFETIME = env_int("ENTRA_METADATA_LIFETIME", 24 * 3600, minimum=60)
RECENT_SIGNIN_WINDOW = env_int("RECENT_SIGNIN_WINDOW", 10 * 60, minimum=60)
THROTTLE_ACCOUNT_FAILURES = env_int("THROTTLE_ACCOUNT_FAILURES", 5, minimum=1, maximum=1000)
THROTTLE_ADDRESS_FAILURES = env_int("THROTTLE_ADDRESS_FAILURES", 30, minimum=1, maximum=100_000)
THROTTLE_WINDOW = env_int("THROTTLE_WINDOW", 15 * 60, minimum=1)
THROTTLE_LOCKOUT = env_int("THROTTLE_LOCKOUT", 15 * 60, minimum=1)

# Keys that encrypt TOTP seeds at rest (Fernet, comma-separated, newest first so older keys can
# still decrypt during a rotation). Only development may leave it empty: then one key is derived
# from SECRET_KEY (tenantlink/lib/crypto.py).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")
if not FIELD_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set (see README: generating keys).")
for _number, _key in enumerate(FIELD_ENCRYPTION_KEYS, 1):
    try:
        Fernet(_key)
    except ValueError:
        # Never the key itself in the message: it ends up in logs.
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS: key {_number} is not a Fernet key (32 bytes in URL-safe base64; see README)."
        ) from None
# Written twice into the authenticator's QR code, which holds about 2,300 characters.
TOTP_ISSUER = env_name("TOTP_ISSUER" if os.environ.get("TOTP_ISSUER") else "SITE_NAME", SITE_NAME, 64)

# Microsoft identity platform: production uses https://login.microsoftonline.com; development,
# the demo and the tests point at the Entra emulator. The single multi-tenant app registration.
# Unlike the rest, a missing or bad value here does not stop the portal: password sign-in goes
# on, and the single sign-on pages say that single sign-on is not configured (the reason is in
# ENTRA_CONFIGURATION_PROBLEM and in the log, never on a page).
ENTRA_AUTHORITY, ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET, ENTRA_HTTP_TIMEOUT, ENTRA_CONFIGURATION_PROBLEM = (
    entra_configuration(os.environ)
)

# A worker's threads that may wait on Microsoft at the same moment: all but one, so that a slow
# Microsoft leaves every process a thread for everything else (gunicorn.conf.py reads the same).
MICROSOFT_CALLS_AT_ONCE = max(1, env_int("GUNICORN_THREADS", 4, minimum=1, maximum=256) - 1)

# Printed to standard output only while developing: in production that is the log, and an
# invitation's link in it is a way into the invited person's account for whoever reads it first.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
_email_module = EMAIL_BACKEND.rpartition(".")[0]
try:
    _email_backend_found = bool(_email_module) and importlib.util.find_spec(_email_module) is not None
except (ImportError, ValueError):
    _email_backend_found = False
if not _email_backend_found:
    raise ImproperlyConfigured(
        f"EMAIL_BACKEND must name an email backend such as django.core.mail.backends.smtp.EmailBackend, "
        f"not {EMAIL_BACKEND!r}."
    )
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually on port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # TLS from the start, usually on port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured(
        "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true: choose the one the mail server speaks."
    )
EMAIL_TIMEOUT = env_int(
    "EMAIL_TIMEOUT", 10, minimum=1
)  # a mail server that hangs must not stall a request or the leaver check
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))  # for the file-based backend
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tenantlink <no-reply@tenantlink.invalid>")
if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", email.utils.parseaddr(DEFAULT_FROM_EMAIL)[1]):
    raise ImproperlyConfigured(
        f"DEFAULT_FROM_EMAIL must be an email address, or a name and one: Portal <no-reply@example.com>, "
        f"not {DEFAULT_FROM_EMAIL!r}."
    )

# English first; a signed-in user's choice (My Profile → Settings) wins over the language cookie
# of the sign-in page's switch, which wins over the browser's Accept-Language. Each language is
# named in itself, so that anyone can find their own.
LANGUAGE_CODE = "en"
FORMAT_MODULE_PATH = ["tenantlink.formats"]
LANGUAGES = [("en", "English"), ("sv", "Svenska"), ("fi", "Suomi")]
LOCALE_PATHS = [BASE_DIR / "tenantlink" / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True
DEFAULT_USER_TIME_ZONE = env_str("DEFAULT_USER_TIME_ZONE", "Europe/Stockholm")
try:
    zoneinfo.ZoneInfo(DEFAULT_USER_TIME_ZONE)
except (ValueError, zoneinfo.ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        f"DEFAULT_USER_TIME_ZONE must be a time zone such as Europe/Stockholm, not {DEFAULT_USER_TIME_ZONE!r}."
    ) from None

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "tenantlink" / "static"]

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Health probes and Prometheus come straight to the instance over plain HTTP: answer them.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics(/|$)"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# Plain text for development; one JSON object a line (LOG_FORMAT=json) for a log collector.
# Both carry the request ID of tenantlink.lib.logs.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_LEVEL = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(LOG_LEVEL, LOG_LEVEL)  # Python's other names
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "tenantlink.lib.logs.RequestIdFilter"},
        "database_down": {"()": "tenantlink.lib.logs.DatabaseDownFilter"},
        "routine_refusals": {"()": "tenantlink.lib.logs.RoutineRefusalFilter"},
        "secret_paths": {"()": "tenantlink.lib.logs.SecretPathFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "tenantlink.lib.logs.JsonFormatter"},
    },
    # On the handler, so that it also sees what Django's child loggers (django.security.*) log.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "database_down", "routine_refusals", "secret_paths"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Each call to Microsoft is logged once, by tenantlink.sso.microsoft.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Through the root's handler only: Django's own console handler (on with DEBUG) would
        # print each line a second time. Django's default level is INFO (below it, every SQL query
        # with DEBUG on); a higher LOG_LEVEL applies to Django's lines too.
        "django": {"handlers": [], "propagate": True, "level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
    },
}

# WhiteNoise serves the few static files straight from the app folders, so no collectstatic
# step is needed to run; `manage.py collectstatic` is still fine for a CDN or a proxy.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
warnings.filterwarnings("ignore", message="No directory at")  # STATIC_ROOT is optional

# Prometheus metrics at /metrics, for a scraper that sends "Authorization: Bearer METRICS_TOKEN".
# Without a token the page does not exist: counts of sign-ins and failures are not for everyone.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 24 characters long.")
if METRICS_TOKEN and not re.fullmatch(r"[!-~]+", METRICS_TOKEN):  # a scraper sends it in a header
    raise ImproperlyConfigured("METRICS_TOKEN must be letters, digits and punctuation, without spaces.")

# How long audit events are kept (0: forever); `manage.py purge_expired` deletes older ones.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 730, maximum=100 * 365)
