#!/usr/bin/env python
import os
import sys
from importlib import import_module

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenantlink.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        import_module(os.environ["DJANGO_SETTINGS_MODULE"])  # refuses a value it cannot read
    except ImproperlyConfigured as problem:
        sys.exit(f"Tenantlink cannot start: {problem}")
    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:  # for a cron job's mail or the journal: one line, not a traceback
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        sys.exit(f"The database cannot be used: {first_line}")
