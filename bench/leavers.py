"""The leaver check's figure: one full pass of `manage.py check_leavers` over every grown
integration (a tenant of its own each, its connected users at the emulator, User.Read.All
granted), as its own process, as an operator runs it: wall time, CPU and peak memory.

Every hundredth tenant has one user disabled, so that a pass also acts (deactivates, audits,
emails) a little, as a real one does."""

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import httpx
from django.db import connection

from bench import stage
from bench.seed import MICROSOFT_PASSWORD
from tenantlink import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PREPARE = """
-- A valid SSO licence for every grown company, and the leaver check on for its integration.
INSERT INTO companies_licence (company_id, product, valid_from, valid_until, revoked, created_at)
SELECT c.id, 'sso', now() - interval '1 day', now() + interval '365 days', false, now()
FROM companies_company c
WHERE c.name LIKE 'Grown %%'
  AND NOT EXISTS (SELECT 1 FROM companies_licence l WHERE l.company_id = c.id AND l.product = 'sso');
UPDATE sso_integration i SET leaver_check = 'on', leaver_checked_at = NULL, leaver_held = 0
FROM companies_company c WHERE c.id = i.company_id AND c.name LIKE 'Grown %%';
"""


def prepare(emulator_url):
    """Switch the check on for the grown integrations and put their tenants into the emulator:
    the app approved with User.Read.All, every connected user present. The number of connections."""
    with connection.cursor() as cursor:
        cursor.execute(PREPARE)
        cursor.execute(
            "SELECT i.tenant_id, c.oid FROM sso_integration i LEFT JOIN sso_connection c ON c.integration_id = i.id"
            " WHERE i.leaver_check = 'on' ORDER BY i.id, c.id"
        )
        users = defaultdict(list)
        for tenant_id, oid in cursor.fetchall():
            users[str(tenant_id)] += [str(oid)] if oid else []
    with httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=600) as control:
        directory = control.get("/directory").json()
        tenants = {tenant["id"]: tenant for tenant in directory["tenants"]}
        for number, (tenant_id, oids) in enumerate(users.items()):
            tenant = tenants.get(tenant_id)
            if tenant is None:
                tenant = {
                    "id": tenant_id,
                    "domain": f"grown{number}.onmicrosoft.com",
                    "display_name": f"Grown {number}",
                    "users": [],
                    "service_principals": [demo.DEMO_CLIENT_ID],
                    "app_role_assignments": {demo.DEMO_CLIENT_ID: ["User.Read.All"]},
                }
                directory["tenants"].append(tenant)
            present = {user["oid"] for user in tenant["users"]}
            tenant["users"] += [
                {
                    "oid": oid,
                    "upn": f"{oid}@grown{number}.onmicrosoft.com",
                    "display_name": f"User {index}",
                    "password": MICROSOFT_PASSWORD,
                    "enabled": not (index == 0 and number % 100 == 0),
                }
                for index, oid in enumerate(oids)
                if oid not in present
            ]
        control.put("/directory", json=directory).raise_for_status()
    return sum(len(oids) for oids in users.values()), len(users)


def one_pass(env):
    """(seconds, CPU seconds, peak resident bytes, output, ru_maxrss bytes) of one `manage.py
    check_leavers`.

    The peak is the runner's own high-water mark (VmHWM in /proc/<pid>/status), read while it
    runs: a high-water mark, so no peak between two reads is missed. wait4's ru_maxrss is not the
    runner's own: when a process starts a program, Linux carries the high-water mark of the memory
    the program replaces into ru_maxrss, and subprocess starts programs from this process's memory
    (vfork), so ru_maxrss is at least this bench process's own peak so far, which grows with the
    tenants `prepare` put into the emulator. It is returned only to be shown beside the figure."""
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "check_leavers"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(OSError):  # it may have exited since
                peak = max(peak, stage.peak_resident_bytes(process.pid))
            time.sleep(0.1)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        output.seek(0)
        text = output.read().strip()
    if process.returncode != 0:
        raise RuntimeError(f"check_leavers failed: {text}")
    return seconds, usage.ru_utime + usage.ru_stime, peak, text, usage.ru_maxrss * 1024
