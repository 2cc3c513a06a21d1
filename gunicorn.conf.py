"""Gunicorn settings for the portal: `gunicorn -c gunicorn.conf.py tenantlink.wsgi`.

Everything an operator tunes comes from the environment (README, Configuration); options given
on the command line win over this file.

Threads matter here: a request that waits on Microsoft (up to ENTRA_HTTP_TIMEOUT per call) holds
one thread, not a whole process, so password sign-in goes on being served beside it.
"""

import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

from gunicorn.glogging import Logger


def _number(name, default, maximum, kind=int):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {text!r}.") from None
    if not 0 < value <= maximum:
        raise SystemExit(f"{name} must be a whole number from 1 to {maximum}, not {text!r}.")
    return value


PROCESSES_OR_THREADS = 256  # at most, of each: more is a typo, not a machine
TEN_YEARS = 10 * 365 * 24 * 3600  # seconds, as the portal's own settings allow at most


def _cores():
    """The cores this process may use: its CPU affinity, and the CPU limit of its cgroup (v2:
    a container's limit, or systemd's CPUQuota=), not the host's count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else multiprocessing.cpu_count()
    try:
        with open("/proc/self/cgroup") as groups:
            own = next((line[3:].strip() for line in groups if line.startswith("0::")), "/")
        with open(os.path.join("/sys/fs/cgroup", own.lstrip("/"), "cpu.max")) as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit to read
    return cores


# One address, or several separated by commas (gunicorn takes a list here, not a string with commas),
# read as the container's health check reads them. This file runs before gunicorn puts its folder on
# the import path.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tenantlink.ops.healthcheck import addresses  # noqa: E402 (needs the path above)

try:
    bind = addresses(os.environ.get("GUNICORN_BIND", "127.0.0.1:8000"))
except ValueError as error:
    raise SystemExit(f"GUNICORN_BIND has a port that is not a number from 0 to 65535: {error.args[0]!r}.") from None
if not bind:  # gunicorn would run on, listening nowhere
    raise SystemExit("GUNICORN_BIND is set but empty: name an address such as 127.0.0.1:8000, or unset it.")
workers = _number("GUNICORN_WORKERS", _number("WEB_CONCURRENCY", _cores(), PROCESSES_OR_THREADS), PROCESSES_OR_THREADS)
worker_class = "gthread"
threads = _number("GUNICORN_THREADS", 4, PROCESSES_OR_THREADS)
# One request may call Microsoft four times in a row (the token, then a tenant's discovery and keys
# not cached yet, then the app's own token for the tenant), each bounded by ENTRA_HTTP_TIMEOUT, or,
# right after an approval, wait up to 10 s more for Microsoft to confirm it (sso/microsoft.py,
# APPROVAL_PATIENCE); a worker is only declared stuck well after that.
try:  # a bad value is reported by the portal itself (single sign-on is then off)
    _entra_timeout = float(os.environ.get("ENTRA_HTTP_TIMEOUT", "") or 10)
except ValueError:
    _entra_timeout = 10
if not 0.1 <= _entra_timeout <= 120:  # also NaN
    _entra_timeout = 10
timeout = _number("GUNICORN_TIMEOUT", max(30, int(4 * _entra_timeout) + 10), TEN_YEARS)
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 30, TEN_YEARS)
keepalive = 5
# The process manager restarts gunicorn, not gunicorn's own control socket (which defaults to
# one path per user, shared with any other gunicorn of that user).
control_socket_disable = True

# Logs go to stdout/stderr for the service manager or container engine to collect. The access
# line has the path without its query string: a Microsoft callback's query holds an
# authorization code and a state.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss "%(a)s" request_id=%({x-request-id}o)s'


class PortalLogger(Logger):
    """Gunicorn's logger without secrets in paths, and in JSON when LOG_FORMAT=json."""

    def atoms(self, resp, req, environ, request_time):
        from tenantlink.lib.logs import escaped, without_secrets  # in a worker, where Django is set up
        from tenantlink.lib.net import client_address_in

        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = escaped(without_secrets(atoms["U"]))  # the path, decoded: %0A is a line break
        atoms["a"] = escaped(atoms["a"])
        # The client, as the audit log has it: behind our proxies (TRUSTED_PROXY_COUNT), the
        # address our outermost proxy saw, not the proxy's own.
        atoms["h"] = client_address_in(environ) or atoms["h"]
        return atoms

    def setup(self, cfg):
        super().setup(cfg)
        from tenantlink.lib.logs import SecretPathFilter

        # Gunicorn's own lines name requests too ("Error handling request /sso/callback/?code=…").
        for handler in self.error_log.handlers:
            handler.addFilter(SecretPathFilter(queries=True))
        if os.environ.get("LOG_FORMAT") == "json":
            from tenantlink.lib.logs import JsonFormatter

            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())


logger_class = PortalLogger


def _settings_problem():
    """The portal's own words for a setting it cannot read (tenantlink/settings.py refuses it, or
    an app's ready() does, as accounts does an EMAIL_BACKEND class that does not exist), found
    before gunicorn listens; else every worker would die with a traceback. Django is set up in a
    process of its own, so that this server's workers, also after a reload with new code, read
    the settings afresh."""
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "tenantlink.settings")
    setup = "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = sys.argv[1]; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", setup, module],
        cwd=os.path.dirname(os.path.abspath(__file__)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode == 0:
        return None
    last = (result.stderr.strip().splitlines() or ["the settings could not be read"])[-1]
    return last.removeprefix("django.core.exceptions.ImproperlyConfigured: ")


# Prometheus metrics from every worker (tenantlink/lib/metrics.py): the workers write their counts
# to files in one folder, set before any worker starts. A folder of this server's own, made once
# it listens (so a start that cannot bind leaves none behind) and removed at the end, unless
# PROMETHEUS_MULTIPROC_DIR names one (which must then be this server's alone; it is emptied at
# each start). A reload (SIGHUP) reads this file again, with the variable set: the environment
# remembers that the folder is ours.
_OWN_FOLDER = "TENANTLINK_OWN_METRICS_FOLDER"


def on_starting(server):
    problem = _settings_problem()
    if problem:
        raise SystemExit(f"Tenantlink cannot start: {problem}")
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
            for name in os.listdir(folder):
                if name.endswith(".db"):
                    os.remove(os.path.join(folder, name))
        except OSError as error:
            raise SystemExit(f"PROMETHEUS_MULTIPROC_DIR must be a folder this server can write: {error}") from None


def when_ready(server):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWN_FOLDER] = tempfile.mkdtemp(
            prefix="tenantlink-metrics-"
        )


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and folder == os.environ.get(_OWN_FOLDER):
        shutil.rmtree(folder, ignore_errors=True)
