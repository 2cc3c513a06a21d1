"""The leaver check's state for /metrics. The check runs in processes of its own (manage.py
check_leavers), so its figures are read from the integrations at each scrape: an alert can say
that no runner is running (the oldest check keeps ageing), that a check is failing, or that people
wait for an administrator's confirmation."""

import logging

from django.db import DatabaseError
from django.db.models import Count, Min, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from tenantlink.lib import metrics
from tenantlink.sso import leavers
from tenantlink.sso.models import Integration

log = logging.getLogger(__name__)


class LeaverCheckCollector:
    def collect(self):
        try:
            states = dict(
                Integration.objects.filter(status__in=Integration.WORKING)
                .values_list("leaver_check")
                .annotate(Count("pk"))
                .order_by()
            )
            checked = leavers.checked_integrations().aggregate(
                # An integration not checked yet ages from when its check was asked for.
                oldest=Min(Coalesce("leaver_checked_at", "leaver_requested_at")),
                held=Sum("leaver_held"),
            )
        except DatabaseError as error:
            log.warning("The leaver check's metrics could not be read: %s", error.__class__.__name__)
            return
        by_state = GaugeMetricFamily(
            "tenantlink_leaver_checks",
            "Usable integrations by the state of their leaver check (off, waiting, on, failing).",
            labels=["state"],
        )
        for state in Integration.LeaverCheck.values:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        oldest = checked["oldest"]
        yield GaugeMetricFamily(
            "tenantlink_leaver_check_age_seconds",
            "Time since the least recently checked integration (check on or failing, valid licence) "
            "was checked; 0 when there is none. Growing past the runner's interval: no runner runs.",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0,
        )
        yield GaugeMetricFamily(
            "tenantlink_leaver_held",
            "Leavers the safety valve holds back until an administrator confirms them.",
            value=checked["held"] or 0,
        )


metrics.AT_SCRAPE.register(LeaverCheckCollector())  # once: Python imports this module once
