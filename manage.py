#!/usr/bin/env python
import os
import sys
from importlib import import_module


def _while_connecting(error):
    """Whether the database error came from opening the connection (Django's
    get_new_connection), not from what the command asked of a database that answered."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_name == "get_new_connection":
            return True
        frame = frame.tb_next
    return False


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenantlink.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    # The settings refuse a value they cannot read: said in one line (unless --settings names
    # other settings, which Django then reads itself).
    if not any(argument.startswith("--settings") for argument in sys.argv[1:]):
        try:
            import_module(os.environ["DJANGO_SETTINGS_MODULE"])
        except ImproperlyConfigured as problem:
            sys.exit(f"Tenantlink cannot start: {problem}")
    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as problem:  # an app's ready() refused (EMAIL_BACKEND's class, say)
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"Tenantlink cannot start: {problem}")
    except OperationalError as error:
        if not _while_connecting(error) or "--traceback" in sys.argv:
            raise  # an error of the command itself (a migration's, say): with its traceback
        # The database cannot be reached: for a cron job's mail or the journal, its words only.
        # One line: psycopg's message goes on with "Is the server running…" on a line of its own.
        sys.exit(f"The database cannot be used: {' '.join(str(error).split())}")
