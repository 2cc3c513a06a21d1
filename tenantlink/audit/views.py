"""The company audit log: filter, read one event, export as CSV."""

import csv
import datetime
import json
import re

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from tenantlink.audit.forms import AuditFilterForm
from tenantlink.audit.models import AuditEvent
from tenantlink.companies.scoping import company_admin_required, company_objects, get_company_object

PAGE_SIZE = 50


def _filtered_events(request):
    company = request.user.company
    form = AuditFilterForm(company, data=request.GET or None)
    events = company_objects(request, AuditEvent.objects)
    if form.is_bound and not form.is_valid():
        # Never fall back to "everything" when a filter could not be read.
        return form, events.none()
    if form.is_bound:
        data = form.cleaned_data
        if data["user"]:
            events = events.filter(Q(target_user=data["user"]) | Q(actor=data["user"]))
        if data["action"]:
            events = events.filter(action=data["action"])
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(created_at__gte=datetime.datetime.combine(data["since"], datetime.time.min, zone))
        if data["until"]:
            end = datetime.datetime.combine(data["until"] + datetime.timedelta(days=1), datetime.time.min, zone)
            events = events.filter(created_at__lt=end)
    return form, events.order_by("-created_at", "-id")


@company_admin_required
def audit_log(request):
    form, events = _filtered_events(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/log.html", {"form": form, "page": page, "query": query.urlencode()})


@company_admin_required
def audit_event(request, event_id):
    event = get_company_object(request, AuditEvent.objects, pk=event_id)
    return render(request, "audit/event.html", {"event": event})


# A cell starting with = + - @ (or their full-width forms) would run as a formula in a spreadsheet
# (CSV injection). So would a part of one after a semicolon: Swedish and Finnish Excel split a CSV
# file's lines there (their list separator), whatever the quotes, and after a tab or a line break.
_FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")
_FORMULA_AFTER_A_SEPARATOR = re.compile(r"([;,\t\r\n])(?=[=+\-@＝＋－＠])")


def _cell(value):
    text = _FORMULA_AFTER_A_SEPARATOR.sub(r"\1'", str(value))
    return "'" + text if text[:1] in _FORMULA_STARTS else text


class _Echo:
    def write(self, value):
        return value


@company_admin_required
def audit_export(request):
    form, events = _filtered_events(request)
    if form.errors:
        return redirect(reverse("audit_log") + "?" + request.GET.urlencode())  # shows what is wrong
    writer = csv.writer(_Echo())
    header = ["time_utc", "actor", "action", "target", "outcome", "client_address", "user_agent", "details"]

    def rows():
        yield "\ufeff"  # the byte order mark by which Excel reads the file as UTF-8
        yield writer.writerow(header)
        for event in events.iterator():
            yield writer.writerow(
                _cell(value)
                for value in (
                    event.created_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    event.actor_label,
                    event.action,
                    event.target_label,
                    event.outcome,
                    event.client_ip or "",
                    event.user_agent,
                    json.dumps(event.details, sort_keys=True, ensure_ascii=False),
                )
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
