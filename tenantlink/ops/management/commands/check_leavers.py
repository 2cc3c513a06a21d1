import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from tenantlink.sso import leavers

log = logging.getLogger(__name__)


def _count(number, thing):
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


class Command(BaseCommand):
    help = (
        "The leaver check: look up at Microsoft every user connected through an integration whose "
        "leaver check is on, and apply its policy to those disabled or deleted there. One pass, or "
        "with --every a pass every SECONDS as a service. Several runners may run at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, metavar="SECONDS", help="keep running, a pass every SECONDS")

    def handle(self, every=None, **options):
        if every is not None and every < 1:  # 0 ran one pass, -1 a pass every second
            raise CommandError(f"--every must be a number of seconds of at least 1, not {every}.")
        while True:
            started = time.monotonic()
            try:
                summary = leavers.check_all()
            except Exception:
                if not every:
                    raise
                # A service keeps going: the next pass may well work (the database was restarted, say).
                log.exception("Leaver check pass failed")
            else:
                # As a service, a line only when something happened (or failed).
                if not every or summary["acted"] or summary["held"] or summary["failing"]:
                    self.stdout.write(
                        f"Leaver check: {_count(summary['integrations'], 'integration')}, "
                        f"{_count(summary['checked'], 'connection')} checked, {_count(summary['acted'], 'user')} "
                        f"lost access, {summary['held']} held back for confirmation, "
                        f"{_count(summary['failing'], 'integration')} failing."
                    )
            if not every:
                return
            close_old_connections()
            time.sleep(max(every - (time.monotonic() - started), 1))
