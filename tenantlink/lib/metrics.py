"""Prometheus metrics, added up over every gunicorn worker.

gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before the workers start: each worker then writes
its counts to files in that folder and /metrics reads them all, so a scrape sees the whole
instance, whichever worker answers it. Without it (manage.py runserver, the tests) the counts
live in the process. Labels take a few fixed values only — a view name, never a URL (which can
hold tenant IDs or tokens), and never a username.
"""

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

SIGNINS = Counter(
    "tenantlink_signins",
    "Sign-ins completed or refused, by method (password, second_factor, totp, recovery_code, "
    "totp_enrolment, microsoft) and outcome (success, failure, denied).",
    ["method", "outcome"],
)
LOCKOUTS = Counter(
    "tenantlink_signin_lockouts",
    "Sign-in pauses started after repeated failures, by what is paused (account or address).",
    ["scope"],
)
MICROSOFT_SECONDS = Histogram(
    "tenantlink_microsoft_request_duration_seconds",
    "Calls to Microsoft, by endpoint (discovery, keys, token, graph).",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MICROSOFT_ERRORS = Counter(
    "tenantlink_microsoft_errors",
    "Calls to Microsoft without a usable answer, by endpoint and kind (timeout, unreachable, "
    "bad_answer, http_4xx, http_5xx).",
    ["endpoint", "kind"],
)
REQUEST_SECONDS = Histogram(
    "tenantlink_request_duration_seconds",
    "Time to answer a request, by view (its URL name), method and status class.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

SIGNIN_METHODS = {"password", "second_factor", "totp", "recovery_code", "totp_enrolment", "microsoft"}
_METHODS = {"GET", "POST", "HEAD"}


def count_signin(method, outcome):
    SIGNINS.labels(method if method in SIGNIN_METHODS else "other", outcome).inc()


def request_metrics(get_response):
    """Middleware: the latency of every request, labelled with the view that answered it."""

    def middleware(request):
        started = time.perf_counter()
        response = get_response(request)
        match = getattr(request, "resolver_match", None)
        REQUEST_SECONDS.labels(
            match.view_name if match else "unmatched",  # static files, unknown pages
            request.method if request.method in _METHODS else "other",
            f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response

    return middleware


def exposition():
    """(body, content type) of every metric, from all workers when there are several."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
