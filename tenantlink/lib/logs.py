"""Log lines that say which request they belong to, as plain text or as one JSON object a line
(LOG_FORMAT). gunicorn.conf.py uses the formatter for gunicorn's own lines, before Django is set
up, so nothing here reads a setting when it is imported.

Every request gets an ID, returned in the X-Request-ID response header and added to every log
record written while it runs. An ID arriving in the request is used only behind our own proxy
(TRUSTED_PROXY_COUNT > 0), where the proxy set it, and only when it looks like an ID: from
anyone else it could be used to write arbitrary text into our logs or to tie unrelated requests
together.
"""

import contextvars
import datetime
import json
import logging
import re
import uuid

from django.conf import settings
from django.core.signals import request_finished
from django.db import InterfaceError, OperationalError

request_id = contextvars.ContextVar("request_id", default="-")

# Letters, digits and a few separators: a UUID, a hex trace ID, "req-1234.5".
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}\Z", re.ASCII)

# An invitation link works once, for whoever opens it first: it is never written to a log.
_INVITATION = re.compile(r"/+invitation/+[^/\s]+/+[^/\s]+/?", re.IGNORECASE)
# A query string, in gunicorn's own lines (a Microsoft callback's holds a code and a state).
_QUERY = re.compile(r"(/[^\s?'\"]*)\?[^\s'\"]*")


def first_line(error):
    """What a log line says of a driver's error: its message's first line (never the query that
    follows in some, whose parameters may hold personal data), or its type without a message."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def without_secrets(text, queries=False):
    """The text with every invitation link's user and token replaced by "(link)", and with
    `queries`, every path's query string by "?(query)"."""
    text = _INVITATION.sub("/invitation/(link)/", text)
    return _QUERY.sub(r"\1?(query)", text) if queries else text


def escaped(text):
    """Text a client chose (a path, a header), for a log line: control characters written out
    as escapes, as Django's own request lines do, so that a path holding a line break cannot add
    a line of its own making to the log, nor a terminal's escape codes reach whoever reads it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def incoming_request_id(request):
    """The ID our proxy gave this request, or a new one."""
    if settings.TRUSTED_PROXY_COUNT:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        if _SANE_ID.match(given):
            return given
    return uuid.uuid4().hex


def request_ids(get_response):
    """Outermost middleware: every log record of a request carries its ID."""

    def middleware(request):
        request.id = incoming_request_id(request)
        # Not reset on the way out: Django logs "Not Found" and the like after the last middleware
        # has returned. It is when the response has been sent (_forget_request_id).
        request_id.set(request.id)
        response = get_response(request)
        response["X-Request-ID"] = request.id
        return response

    return middleware


def _forget_request_id(**_kwargs):
    """After the response has been sent: what the server's thread logs next (a connection that
    sends no request, a broken TLS handshake) belongs to no request, and says "-"."""
    request_id.set("-")


request_finished.connect(_forget_request_id, dispatch_uid="tenantlink.lib.logs.forget_request_id")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request), for both formats."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class DatabaseDownFilter(logging.Filter):
    """A request that failed because the database is unreachable or busy is logged in one line,
    not with two chained tracebacks: during an outage every request fails the same way, and the
    page it got was the 503, not an error of ours. A refused request (4xx) is one line too."""

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if getattr(record, "status_code", 500) < 500:
            # A refusal (403, 400, 404…) is the visitor's doing, answered with its page: one line
            # says it all, a traceback of our code would only bury the real errors.
            record.exc_info = record.exc_text = None
        elif isinstance(error, OperationalError | InterfaceError):
            request = getattr(record, "request", None)
            record.msg = "Database unavailable at %s: %s"
            record.args = (
                getattr(request, "path", "-"),
                first_line(error),
            )
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class RoutineRefusalFilter(logging.Filter):
    """Django logs every request it refuses as suspicious at ERROR. Four of them anyone can send
    at will, and the internet does all day: a Host header that is not ours (scanners going by IP
    address), a form past DATA_UPLOAD_MAX_MEMORY_SIZE, or with too many fields or files. Each got
    its 400 page and nothing of ours failed, so they are warnings: at ERROR anyone could flood the
    log that pages an operator. Every other django.security record keeps its level: those are
    not routine (a multipart body that got the parser stuck, a redirect to an unsafe scheme, a
    lookup in the operator admin that it does not offer)."""

    ROUTINE = frozenset(
        f"django.security.{name}"
        for name in ("DisallowedHost", "RequestDataTooBig", "TooManyFieldsSent", "TooManyFilesSent")
    )

    def filter(self, record):
        if record.name not in self.ROUTINE:
            return True
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        # The logger let it through as an error: with LOG_LEVEL=ERROR the warning is not wanted.
        # Asked each time, as every handler sees the record this filter has already lowered.
        return logging.getLogger(record.name).isEnabledFor(record.levelno)


class SecretPathFilter(logging.Filter):
    """No invitation link in any line. Django writes the path of a refused request: the HEAD a
    mail server's link checker sends (405), a POST without a CSRF token (403), a 404. With
    `queries`, no query string either: for gunicorn's own lines ("Error handling request …")."""

    def __init__(self, queries=False):
        super().__init__()
        self.queries = queries

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a broken log call: logging reports it when the handler formats it
            return True
        hidden = without_secrets(message, self.queries)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, and the
    traceback when there is one. Gunicorn's access lines become fields of their own."""

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            entry.update(_access_fields(record.args))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _access_fields(atoms):
    """Gunicorn's access-log atoms, as the access log format of gunicorn.conf.py keeps them: the
    path without its query string, which can hold an authorization code or a state."""
    fields = {
        "remote": atoms.get("h"),
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "status": int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s"),
        "bytes": atoms.get("B"),
        "user_agent": atoms.get("a"),
    }
    if str(atoms.get("D", "")).isdigit():
        fields["duration_ms"] = round(int(atoms["D"]) / 1000, 1)
    if atoms.get("{x-request-id}o", "-") != "-":
        fields["request_id"] = atoms["{x-request-id}o"]
    return fields
