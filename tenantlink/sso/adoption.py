"""The adoption picture, on a company's Single sign-on page and for all companies in the operator
admin: each integration's connected users out of its company's active users, and the sign-ins
per day of the last 30 days by method, drawn as SVG on the server (the page's Content-Security-
Policy allows no inline style or script) with the same numbers in a table.

Days are the viewer's: midnight to midnight in the time zone the request runs in (the user's own,
see tenantlink.lib.middleware.user_time_zone). The audit log keeps UTC."""

import datetime
from dataclasses import dataclass

from django.utils import timezone

from tenantlink.audit.models import MICROSOFT, PASSWORD, AuditEvent, SigninSlot

DAYS = 30

# The SVG's own coordinates (its viewBox); it is scaled to the width of the page. At a phone's
# 375 px it is drawn at about its own size, so its 11-unit text stays readable.
WIDTH, HEIGHT = 360, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 30
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_HEIGHT
STEP = PLOT_WIDTH / DAYS
BAR = STEP * 0.7


def axis_top(largest):
    """The smallest of 2, 4, 6, 8, 10, 20, 40 … at or above `largest`: round, and its half (the
    middle gridline) is a whole number too."""
    scale = 1
    while True:
        for top in (2, 4, 6, 8, 10):
            if top * scale >= largest:
                return top * scale
        scale *= 10


@dataclass
class Day:
    date: datetime.date
    password: int
    microsoft: int
    x: float = 0
    password_y: float = 0
    password_height: float = 0
    microsoft_y: float = 0
    microsoft_height: float = 0

    @property
    def total(self):
        return self.password + self.microsoft


class Chart:
    """Sign-ins per day, stacked: password + second factor at the bottom, Microsoft above."""

    # What the template draws, in the SVG's coordinates.
    width, height, left, right, baseline, bar = WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, BASELINE, round(BAR, 2)
    middle_y, top_y, label_y, tick_x = BASELINE - PLOT_HEIGHT / 2, TOP, HEIGHT - 10, LEFT - 6

    def __init__(self, first, zone, counts):
        self.zone = zone
        self.days = [
            Day(day, counts.get((day, PASSWORD), 0), counts.get((day, MICROSOFT), 0))
            for day in (first + datetime.timedelta(days=n) for n in range(DAYS))
        ]
        self.top = axis_top(max(day.total for day in self.days))
        for index, day in enumerate(self.days):
            day.x = round(LEFT + index * STEP + (STEP - BAR) / 2, 2)
            day.password_height = round(day.password / self.top * PLOT_HEIGHT, 2)
            day.password_y = round(BASELINE - day.password_height, 2)
            day.microsoft_height = round(day.microsoft / self.top * PLOT_HEIGHT, 2)
            day.microsoft_y = round(day.password_y - day.microsoft_height, 2)
        self.password = sum(day.password for day in self.days)
        self.microsoft = sum(day.microsoft for day in self.days)
        self.first, self.last = self.days[0].date, self.days[-1].date

    @property
    def total(self):
        return self.password + self.microsoft

    @property
    def middle(self):
        return self.top // 2

    @property
    def zone_name(self):
        return str(self.zone)


def _window():
    """The first of the last DAYS days in the viewer's time zone, and its midnight there."""
    zone = timezone.get_current_timezone()
    first = timezone.localdate(timezone.now(), zone) - datetime.timedelta(days=DAYS - 1)
    return zone, first, datetime.datetime.combine(first, datetime.time.min, tzinfo=zone)


def company_chart(company):
    zone, first, since = _window()
    return Chart(first, zone, AuditEvent.objects.signins_per_day(since, zone, company))


def all_companies_chart():
    zone, first, since = _window()
    return Chart(first, zone, SigninSlot.objects.signins_per_day(since, zone, timezone.now()))
