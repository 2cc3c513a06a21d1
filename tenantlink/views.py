import logging
import threading
import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache

from tenantlink.lib import metrics
from tenantlink.lib.logs import first_line
from tenantlink.sso import metrics as leaver_metrics

log = logging.getLogger(__name__)


def home(request):
    return redirect("portal" if request.user.is_authenticated else "signin")


def staff_signin(request):
    """Where the operator admin sends whoever it does not let in. Not signed in: the portal's own
    sign-in (password and second factor), then back. Signed in without operator rights: the 403
    page; the sign-in page would send them straight back to the admin, and round again."""
    if request.user.is_authenticated:
        raise PermissionDenied
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("signin") + (f"?{query}" if query else ""))


@login_required
def portal(request):
    return render(request, "portal.html")


@never_cache
def live(request):
    """For a process supervisor: the process answers. Never touches the database (asked without a
    session cookie, as probes are), so a database outage does not get healthy processes restarted."""
    return JsonResponse({"status": "ok"})


# How long a probe or a scrape waits for the one before it (see OneAtATime).
PROBE_WAIT = 2


class OneAtATime:
    """For what probes or scrapers ask for again and again and what needs the database: one read
    at a time in a process. A database server that froze (a stalled disk, a stopped process)
    holds a query without end: its statement_timeout is its own, and TCP sees nothing wrong. The
    next requests then wait PROBE_WAIT seconds and get `unavailable()`, instead of each holding a
    thread until no thread is left, not even for the liveness probe. A request that waited while
    another read gets that read's answer: a slow database does not make probes time out."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last = (float("-inf"), None)  # when the last read ended, and its answer

    def __call__(self, read, unavailable):
        asked = time.monotonic()
        if not self.lock.acquire(timeout=PROBE_WAIT):
            return unavailable()
        try:
            ended, answer = self.last
            if ended >= asked:  # read after this request came: as fresh as reading again
                return answer
            answer = read()
            self.last = (time.monotonic(), answer)
            return answer
        finally:
            self.lock.release()


_readiness = OneAtATime()
_schema_current = False  # once the database had every migration this code knows, it keeps them
_not_ready_reason = None  # why this process was last not ready, or None


def _why_not_ready():
    """None when the database answers and has every migration of this code; else the reason, and
    what to say about it in the log. A new release started before `manage.py migrate` is not
    ready: its load balancer goes on sending people to the instances of the release before."""
    global _schema_current
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 (whatever the driver raises, the answer is "not ready")
        return "unreachable", f"the database does not answer: {first_line(error)}"
    if not _schema_current:
        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except Exception as error:  # noqa: BLE001 (a broken migration graph, the table unreadable)
            return (
                "migrations_unknown",
                f"this code's migrations cannot be compared with the database: {first_line(error)}",
            )
        if plan:
            names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _backwards in plan[:5])
            if len(plan) > 5:  # a new, empty database lacks them all
                names += f" and {len(plan) - 5} more"
            return "migrations_pending", f"the database lacks migrations ({names}): run manage.py migrate"
        _schema_current = True
    return None, None


def _readiness_read():
    """The reason readiness fails now, or None; logged when it changes, not at every probe."""
    global _not_ready_reason
    reason, said = _why_not_ready()
    if reason != _not_ready_reason:
        if reason:
            log.warning("Not ready: %s", said)
        else:
            log.info("Ready again")
        _not_ready_reason = reason
    return reason


@never_cache
def health(request):
    """Readiness, for load balancers: 200 when the database answers and has every migration of
    this code, 503 with the reason when not."""
    reason = _readiness(_readiness_read, lambda: "unreachable")
    if reason is None:
        return JsonResponse({"status": "ok"})
    response = JsonResponse({"status": "unavailable", "database": reason}, status=503)
    response._has_been_logged = True  # said once when it changed (above), not at every probe
    return response


def _for_scraper(request, exposition):
    """Prometheus figures, for a scraper that sends METRICS_TOKEN as a bearer token. Without a
    token configured the page does not exist."""
    if not settings.METRICS_TOKEN:
        raise Http404
    if not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {settings.METRICS_TOKEN}"):
        return HttpResponse("A bearer token is required.\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    figures = exposition()
    if figures is None:
        return HttpResponse("The database does not answer.\n", status=503, headers={"Retry-After": "30"})
    body, content_type = figures
    return HttpResponse(body, content_type=content_type)


@never_cache
def metrics_page(request):
    """This instance's counts (all its workers'); never touches the database."""
    return _for_scraper(request, metrics.exposition)


_leaver_figures = OneAtATime()


@never_cache
def leaver_metrics_page(request):
    """The leaver check's state, read from the database: the same on every instance."""
    return _for_scraper(request, lambda: _leaver_figures(leaver_metrics.exposition, lambda: None))
