"""Log lines: each carries the ID of its request (also in the X-Request-ID response header), as
plain text or one JSON object a line, and never a password, a code or the client secret."""

import io
import json
import logging
import runpy
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils.module_loading import import_string

from tenantlink.accounts.tests.company_user_helpers import invitation_path, invite_carol
from tenantlink.conftest import PASSWORD, code_for, sign_in
from tenantlink.lib.logs import JsonFormatter
from tenantlink.sso.tests.conftest import CLIENT_SECRET, CONTOSO, fake_microsoft  # noqa: F401 (a fixture)

PROXY_ID = "7d1e0c44-9b2f-4d55-a1c3-0f6e2b9d8a17"


@pytest.fixture
def json_log():
    """Everything logged while the test runs, formatted as LOG_FORMAT=json writes it, through the
    filters the settings give the console handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for name in settings.LOGGING["handlers"]["console"]["filters"]:
        handler.addFilter(import_string(settings.LOGGING["filters"][name]["()"])())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_response_carries_a_new_request_id(client):
    first, second = client.get("/signin/")["X-Request-ID"], client.get("/signin/")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_a_request_id_from_the_client_is_ignored_without_a_proxy(client):
    assert client.get("/signin/", headers={"X-Request-ID": PROXY_ID})["X-Request-ID"] != PROXY_ID


def test_our_proxys_request_id_is_used(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/signin/", headers={"X-Request-ID": PROXY_ID})["X-Request-ID"] == PROXY_ID


@pytest.mark.parametrize("given", ["short", "a b c d e f g h", "x" * 129, "id\nforged log line", "<script>id</script>"])
def test_a_request_id_that_is_not_an_id_is_replaced(client, settings, given):
    settings.TRUSTED_PROXY_COUNT = 1
    answered = client.get("/signin/", headers={"X-Request-ID": given})["X-Request-ID"]
    assert answered != given and len(answered) == 32


def test_a_json_log_line_names_its_request(client, json_log):
    response = client.get("/no-such-page/")

    (line,) = [line for line in lines(json_log) if line["logger"] == "django.request"]
    assert line["level"] == "WARNING" and line["message"] == "Not Found: /no-such-page/"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["time"].endswith("+00:00")


def test_outside_a_request_the_id_is_a_dash(json_log):
    thread = threading.Thread(target=logging.getLogger("tenantlink.test").info, args=["started"])
    thread.start()
    thread.join()
    assert lines(json_log)[-1]["request_id"] == "-"


def test_after_a_response_the_servers_next_line_names_no_request(client, json_log):
    """Gunicorn's own lines between requests (a connection that sends nothing, a broken TLS
    handshake) come from the thread that served the last request: not with its ID."""
    client.get("/no-such-page/")

    logging.getLogger("gunicorn.error").warning("Invalid request from ip=192.0.2.7")

    assert lines(json_log)[-1]["message"] == "Invalid request from ip=192.0.2.7"
    assert lines(json_log)[-1]["request_id"] == "-"


def test_no_secret_is_logged_during_a_sign_in_and_a_consent(client, json_log, admin, fake_microsoft):  # noqa: F811
    codes = [code_for(admin, offset=5)]
    client.post("/signin/", {"username": admin.username, "password": "a wrong password, also secret"})
    client.post("/signin/", {"username": admin.username, "password": PASSWORD})
    client.post("/signin/verify/", {"code": codes[0]})  # a code from minutes ahead, refused
    sign_in(client, admin)
    codes.append(code_for(admin))
    response = client.post("/company/sso/add/", {"tenant": "contoso.onmicrosoft.com", "display_name": ""})
    state = parse_qs(urlsplit(response.url).query)["state"][0]
    fake_microsoft.app_in.add(CONTOSO)
    to_microsoft = client.get("/sso/consent/callback/", {"admin_consent": "True", "tenant": CONTOSO, "state": state})
    signed_in = fake_microsoft.sign_in(client, to_microsoft)  # at the tenant: the code redeemed, the app confirmed
    tenant_state = parse_qs(urlsplit(to_microsoft.url).query)["state"][0]
    assert client.get(signed_in.url).status_code == 200

    logged = json_log.getvalue()
    assert "Microsoft POST" in logged and "Not Found" not in logged  # the flow happened, and was logged
    for secret in [PASSWORD, "a wrong password, also secret", CLIENT_SECRET, state, tenant_state, admin.seed, *codes]:
        assert secret not in logged


@pytest.mark.parametrize(("proxies", "remote"), [(0, "10.0.0.2"), (1, "203.0.113.9")])
def test_the_access_line_names_the_client_and_hides_invitation_links(settings, monkeypatch, tmp_path, proxies, remote):
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # so reading the file makes no folder
    logger = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))["PortalLogger"](Config())
    settings.TRUSTED_PROXY_COUNT = proxies
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/invitation/MQ/c8x-4f1e9a/",
        "PATH_INFO": "/invitation/MQ/c8x-4f1e9a/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.2",  # our proxy
        "HTTP_X_FORWARDED_FOR": "198.51.100.7, 203.0.113.9",  # forged by the client, then our proxy's
    }
    response = SimpleNamespace(status="200 OK", headers=[], sent=512)
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    assert atoms["h"] == remote
    assert atoms["U"] == "/invitation/(link)/"


def test_a_path_or_user_agent_cannot_write_a_line_of_its_own_into_the_access_log(settings, monkeypatch, tmp_path):
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import SafeAtoms

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))
    logger = config["PortalLogger"](Config())
    forged = '\r\n10.0.0.1 "POST /company/users/2/deactivate/" 302 0 0.01s'
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/nothing%0D%0A10.0.0.1",
        "PATH_INFO": "/nothing" + forged,  # %0D%0A, decoded by the server
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.2",
        "HTTP_USER_AGENT": "curl\x1b[2J\x00",  # a terminal's "clear screen", and a NUL
    }
    response = SimpleNamespace(status="404 Not Found", headers=[], sent=0)
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    line = config["access_log_format"] % SafeAtoms(atoms)  # as gunicorn writes the line
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    assert atoms["U"] == '/nothing\\r\\n10.0.0.1 "POST /company/users/2/deactivate/" 302 0 0.01s'
    assert atoms["a"] == "curl\\x1b[2J\\x00"
    assert (
        logger.atoms(response, SimpleNamespace(headers=[]), {**environ, "PATH_INFO": "/sökning"}, timedelta())["U"]
        == "/sökning"
    )  # printable text stays as it is


def test_no_invitation_link_is_logged_when_django_refuses_it(admin_client, json_log):
    invite_carol(admin_client)
    path = invitation_path(mail.outbox[0])
    browser = Client(enforce_csrf_checks=True)
    assert browser.head(path).status_code == 302  # a mail server's link checker: as a GET, nothing used up
    assert browser.options(path).status_code == 405
    assert browser.post(path, {"new_password1": "x"}).status_code == 403  # no CSRF token
    assert browser.get(path + "%00").status_code == 400
    # Mistyped on the way (a mail client changed its case, a slash doubled): still a live token.
    assert browser.get(path.replace("/invitation/", "/Invitation/")).status_code == 404
    assert browser.get(path.replace("/invitation/", "/invitation//")).status_code == 404
    messages = [line["message"] for line in lines(json_log)]
    assert "Method Not Allowed (OPTIONS): /invitation/(link)/" in messages
    assert "Forbidden (CSRF cookie not set.): /invitation/(link)/" in messages
    assert path.split("/")[-2] not in json_log.getvalue()  # the token


def test_a_refused_request_is_one_line_without_a_traceback(member_client, json_log):
    assert member_client.get("/company/users/").status_code == 403  # a member, not an administrator
    assert member_client.get("/health/live/", HTTP_HOST="portal.evil.example").status_code == 400  # not our host
    logged = [(line["logger"], line["message"]) for line in lines(json_log) if line["logger"].startswith("django.")]
    assert logged == [
        ("django.request", "Forbidden (Permission denied): /company/users/"),
        (
            "django.security.DisallowedHost",
            "Invalid HTTP_HOST header: 'portal.evil.example'. You may need to add 'portal.evil.example' to ALLOWED_HOSTS.",
        ),
    ]
    assert "Traceback" not in json_log.getvalue()


def test_the_metrics_folder_gunicorn_made_is_removed_at_the_end_also_after_a_reload(settings, monkeypatch):
    import os

    # Set empty (as good as unset for the file), so that what the file sets is undone afterwards.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("TENANTLINK_OWN_METRICS_FOLDER", "")
    config = str(settings.BASE_DIR / "gunicorn.conf.py")
    started = runpy.run_path(config)
    assert not os.environ["PROMETHEUS_MULTIPROC_DIR"]  # none yet: a start that cannot listen leaves none behind
    started["when_ready"](None)  # it listens
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(folder)
    reloaded = runpy.run_path(config)  # SIGHUP: gunicorn reads the file again
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == folder
    reloaded["on_exit"](None)
    assert not os.path.exists(folder)
    started["on_exit"](None)  # harmless twice

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", folder)  # a folder of the operator's: kept
    monkeypatch.setenv("TENANTLINK_OWN_METRICS_FOLDER", "")
    os.makedirs(folder)
    runpy.run_path(config)["on_exit"](None)
    assert os.path.isdir(folder)
    os.rmdir(folder)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THROTTLE_WINDOW", "abc", "Tenantlink cannot start: THROTTLE_WINDOW must be a whole number, not 'abc'."),
        (
            "PROMETHEUS_MULTIPROC_DIR",
            "/proc/no-such-folder",
            "PROMETHEUS_MULTIPROC_DIR must be a folder this server can",
        ),
        (  # refused by the accounts app when Django is set up, not by the settings
            "EMAIL_BACKEND",
            "django.core.mail.backends.smtp.EmailBackendd",
            "Tenantlink cannot start: EMAIL_BACKEND names no email backend class that exists",
        ),
    ],
)
def test_gunicorn_says_what_is_wrong_with_a_setting_before_it_listens(settings, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    config = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))
    with pytest.raises(SystemExit) as stopped:
        config["on_starting"](None)
    assert str(stopped.value).startswith(message)
    assert "Traceback" not in str(stopped.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("GUNICORN_TIMEOUT", "99999999999999"), ("GUNICORN_WORKERS", "100000"), ("GUNICORN_THREADS", "0")],
)
def test_gunicorn_refuses_numbers_past_any_machine(settings, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=f"{name} must be a whole number from 1 to"):
        runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))


def test_gunicorn_refuses_a_port_out_of_range_and_survives_a_timeout_that_is_not_a_number(settings, monkeypatch):
    config = str(settings.BASE_DIR / "gunicorn.conf.py")
    for bad in ("127.0.0.1:99999", "127.0.0.1:abc", "[::1]:", "127.0.0.1:8000,localhost:http", "tcp://a:99999"):
        monkeypatch.setenv("GUNICORN_BIND", bad)
        with pytest.raises(SystemExit, match="GUNICORN_BIND has a port that is not a number from 0 to 65535"):
            runpy.run_path(config)
    for good in ("127.0.0.1:8000", "[::1]:8000", "localhost", "unix:/run/tenantlink.sock", "fd://3"):
        monkeypatch.setenv("GUNICORN_BIND", good)
        assert runpy.run_path(config)["bind"] == [good]
    monkeypatch.setenv("GUNICORN_BIND", " 0.0.0.0:80, [::]:80 ")  # gunicorn listens on each
    assert runpy.run_path(config)["bind"] == ["0.0.0.0:80", "[::]:80"]
    monkeypatch.setenv("GUNICORN_BIND", " ")  # gunicorn ran on, listening nowhere
    with pytest.raises(SystemExit, match="GUNICORN_BIND is set but empty"):
        runpy.run_path(config)
    monkeypatch.delenv("GUNICORN_BIND")
    monkeypatch.setenv("ENTRA_HTTP_TIMEOUT", "nan")  # the portal reports it and turns single sign-on off
    assert runpy.run_path(config)["timeout"] == 50


def test_gunicorns_own_lines_show_neither_query_strings_nor_invitation_links(settings, monkeypatch, tmp_path):
    from gunicorn.config import Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    logger = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))["PortalLogger"](Config())
    stream = io.StringIO()
    logger.error_log.handlers[0].stream = stream
    logger.error("Error handling request %s", "/sso/callback/?code=secret-code&state=secret-state")
    logger.info("Invalid request from ip=%s: %s", "10.0.0.9", "Invalid HTTP request line: 'GET /x?code=c2 HTTP/1.1'")
    logger.error("Error handling request %s", "/invitation/MQ/c8x-4f1e9a/")
    written = stream.getvalue()
    assert "/sso/callback/?(query)" in written and "/x?(query) HTTP/1.1" in written
    assert "/invitation/(link)/" in written
    for secret in ("secret-code", "secret-state", "c2", "c8x-4f1e9a"):
        assert secret not in written


def test_a_broken_log_call_is_left_for_logging_to_report():
    from tenantlink.lib.logs import SecretPathFilter

    # A filter that raised would raise in the code that logged (logging guards only formatting).
    record = logging.LogRecord("tenantlink.somewhere", logging.WARNING, __file__, 1, "%s and %s", ("one",), None)
    assert SecretPathFilter().filter(record) is True


def test_refusals_anyone_can_send_are_warnings_not_errors(client, json_log, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000, 10
    answers = [
        client.get("/health/live/", HTTP_HOST="portal.evil.example"),  # scanners going by IP address
        client.post("/signin/", {"username": "x" * 2000}),
        client.post("/signin/", {f"field{n}": "x" for n in range(20)}),
    ]

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    security = [line for line in lines(json_log) if line["logger"].startswith("django.security.")]
    assert [(line["level"], line["logger"]) for line in security] == [
        ("WARNING", "django.security.DisallowedHost"),
        ("WARNING", "django.security.RequestDataTooBig"),
        ("WARNING", "django.security.TooManyFieldsSent"),
    ]
    assert [line["request_id"] for line in security] == [answer["X-Request-ID"] for answer in answers]
    assert not [line for line in lines(json_log) if line["level"] == "ERROR"]


def test_a_plain_log_line_of_a_wrong_host_says_warning(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    for name in settings.LOGGING["handlers"]["console"]["filters"]:
        handler.addFilter(import_string(settings.LOGGING["filters"][name]["()"])())
    logging.getLogger().addHandler(handler)
    try:
        response = client.get("/health/live/", HTTP_HOST="portal.evil.example")
    finally:
        logging.getLogger().removeHandler(handler)

    assert (
        f" WARNING django.security.DisallowedHost [{response['X-Request-ID']}] Invalid HTTP_HOST" in stream.getvalue()
    )


def test_log_level_error_applies_to_djangos_lines_too(monkeypatch):
    import importlib

    import tenantlink.settings

    levels = {}
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        monkeypatch.setenv("LOG_LEVEL", level)
        levels[level] = importlib.reload(tenantlink.settings).LOGGING["loggers"]["django"]["level"]
    monkeypatch.undo()
    importlib.reload(tenantlink.settings)
    # Not DEBUG: Django's debug lines (every SQL query with DEBUG on) are not the portal's.
    assert levels == {"DEBUG": "INFO", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR"}


def test_with_log_level_error_a_routine_refusal_is_not_written(client, json_log):
    django_logger = logging.getLogger("django")
    level = django_logger.level
    django_logger.setLevel(logging.ERROR)  # as LOG_LEVEL=ERROR sets it
    try:
        assert client.get("/health/live/", HTTP_HOST="portal.evil.example").status_code == 400
        logging.getLogger("django.security.SuspiciousFileOperation").error("still written")
    finally:
        django_logger.setLevel(level)

    assert [(line["level"], line["message"]) for line in lines(json_log)] == [("ERROR", "still written")]


def test_other_suspicious_operations_stay_errors(json_log):
    for name in ("SuspiciousMultipartForm", "SuspiciousFileOperation", "DisallowedRedirect", "SuspiciousSession"):
        logging.getLogger(f"django.security.{name}").error("something to look at")

    assert [line["level"] for line in lines(json_log)] == ["ERROR"] * 4
