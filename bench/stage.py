"""The benchmark's stage: the Entra emulator and the portal under gunicorn as real processes
(PostgreSQL comes from tests.postgres), and what the kernel says about the portal's workers:
their CPU time and resident memory, read from /proc."""

import os
import sys
from pathlib import Path

from tenantlink import demo
from tests.e2e import conftest
from tests.e2e.conftest import FIELD_ENCRYPTION_KEY, ROOT, Service, base_environment, free_port

PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
THREADS = 4  # gthread threads per worker when gunicorn.conf.py does not say


def cores():
    return len(os.sched_getaffinity(0))


def start_emulator(folder):
    url = f"http://127.0.0.1:{free_port()}"
    return url, conftest.start_emulator(url, folder / "emulator.log")


def portal_environment(database_url, url, emulator_url, folder):
    return {
        **base_environment(),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "tenantlink.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-key-not-for-production-7d1e4b9a0c3f2e58",
        "FIELD_ENCRYPTION_KEYS": FIELD_ENCRYPTION_KEY,
        "SITE_URL": url,
        "ENTRA_AUTHORITY": emulator_url,
        "ENTRA_CLIENT_ID": demo.DEMO_CLIENT_ID,
        "ENTRA_CLIENT_SECRET": demo.DEMO_CLIENT_SECRET,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(folder / "mailbox"),
        # The portal logs its warnings and errors; gunicorn.conf.py still writes an access line per
        # request, as in production.
        "LOG_LEVEL": "WARNING",
    }


def gunicorn_arguments(port):
    """The production server configuration: gunicorn.conf.py when the repository has one (with
    the port overridden), else one worker per core with gthread threads."""
    bind = ["--bind", f"127.0.0.1:{port}", "--no-control-socket"]
    if (ROOT / "gunicorn.conf.py").exists():
        return ["--config", str(ROOT / "gunicorn.conf.py"), *bind], "gunicorn.conf.py"
    workers = cores()
    described = f"{workers} workers × {THREADS} gthread threads (explicit arguments)"
    return [*bind, "--workers", str(workers), "--worker-class", "gthread", "--threads", str(THREADS)], described


def start_portal(env, port):
    arguments, described = gunicorn_arguments(port)
    service = Service(
        "The portal (gunicorn)",
        [PYTHON, "-m", "gunicorn", "tenantlink.wsgi", *arguments],
        env,
        Path(env["EMAIL_FILE_PATH"]).parent / "portal.log",
    )
    service.wait_until_answering(f"{env['SITE_URL']}/health/")
    return service, described


def workers(master_pid):
    """The gunicorn worker processes: the master's children."""
    children = []
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return [int(pid) for pid in children]


def _stat(pid):
    # Fields after the command name, which may itself hold spaces and parentheses.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids):
    """User + system CPU time of the processes so far."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def resident_bytes(pid):
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def peak_resident_bytes(pid="self"):
    """The process's high-water mark of resident memory since it started its program (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return f"{cores()} cores ({model}), {memory / 1024:.0f} GiB RAM, Linux {os.uname().release}, Python {sys.version.split()[0]}"
