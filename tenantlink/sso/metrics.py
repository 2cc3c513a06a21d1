"""The leaver check's state for Prometheus, at /metrics/leavers. The check runs in processes of its
own (manage.py check_leavers), perhaps on another machine, so its state is read from the
integrations at each scrape: the same on every instance, so one scrape job for the deployment. It
has a page of its own so that /metrics, which never touches the database, keeps answering while the
database does not."""

import contextlib

from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from tenantlink.sso import leavers
from tenantlink.sso.models import Integration

# A scrape that waits on a stuck database gives up after this per statement (two), within
# Prometheus's default scrape timeout of 10 s, rather than holding a worker thread.
QUERY_TIMEOUT_MS = 2000


class LeaverCheckCollector:
    def collect(self):
        postgresql = connection.vendor == "postgresql"
        # The timeout needs a transaction; on SQLite one would take the write lock (IMMEDIATE).
        with transaction.atomic() if postgresql else contextlib.nullcontext():
            if postgresql:
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}")
            states = dict(leavers.licensed_integrations().values_list("leaver_check").annotate(Count("pk")).order_by())
            unconfirmed = Q(leaver_held__gt=0) & ~Q(leaver_confirmed_digest=F("leaver_held_digest"))
            checked = leavers.checked_integrations().aggregate(
                last=Max("leaver_checked_at"),
                first_asked=Min("leaver_requested_at"),
                held=Sum("leaver_held", filter=unconfirmed),
            )
        by_state = GaugeMetricFamily(
            "tenantlink_leaver_check_integrations",
            "Integrations (active or disabled, valid licence) by the state of their leaver check.",
            labels=["state"],
        )
        for state in Integration.LeaverCheck.values:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        # Before any integration was checked, the runner is behind since the first check was asked for.
        last = checked["last"] or checked["first_asked"]
        if last is not None:
            yield GaugeMetricFamily(
                "tenantlink_leaver_check_last_checked_timestamp_seconds",
                "When a runner last finished checking an integration whose check is on or failing "
                "(Unix time); before any was, when the first check was asked for. Falling behind "
                "the runner's interval: no runner is running.",
                value=last.timestamp(),
            )
        yield GaugeMetricFamily(
            "tenantlink_leaver_held_users",
            "Leavers the safety valve holds back and an administrator has not yet confirmed.",
            value=checked["held"] or 0,
        )


def exposition():
    registry = CollectorRegistry()  # a new one per scrape: registering reads nothing
    registry.register(LeaverCheckCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
