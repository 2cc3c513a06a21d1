"""`make demo`: migrate, seed the demo data, start the Entra emulator and the portal.

Demo data only: the passwords and TOTP seeds below are published in the README on purpose.
Running the demo again puts every demo account back into the state described here.
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_DIRECTORY = ROOT / "entra_emulator" / "demo_directory.json"

DEMO_CLIENT_ID = "4f6b2a8e-3c1d-4e5f-9a7b-8c2d1e0f3a6b"
DEMO_CLIENT_SECRET = "tenantlink-demo-secret"  # the emulator's demo app registration, not a real secret
LEAVER_CHECK_INTERVAL = 30  # seconds between passes of the leaver check in the demo
# The installation's configuration (README, Configuration), never taken from the shell: an
# environment file sourced for pg_dump or a manage.py command would otherwise give the demo, whose
# superuser's password is in the README, an installation's database, keys, address or proxies.
# DEMO_DATABASE_URL names another database for it; unset, it is the default SQLite file
# var/db.sqlite3. Logging (LOG_LEVEL, LOG_FORMAT) is left as the shell has it.
DEMO_OWN = {
    *("DATABASE_URL", "DATABASE_POOL", "PGCONNECT_TIMEOUT", "SQLITE_BUSY_TIMEOUT", "DJANGO_SETTINGS_MODULE"),
    *("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "SITE_URL", "SITE_NAME", "ALLOWED_HOSTS", "TRUSTED_PROXY_COUNT"),
    *("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"),
    *("ENTRA_AUTHORITY", "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_SECRET_FILE"),
    *("ENTRA_HTTP_TIMEOUT", "ENTRA_METADATA_LIFETIME", "METRICS_TOKEN", "TOTP_ISSUER"),
    *("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"),
    *("EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_FILE_PATH", "DEFAULT_FROM_EMAIL"),
    *("GUNICORN_BIND", "GUNICORN_WORKERS", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"),
    *("GUNICORN_GRACEFUL_TIMEOUT", "PROMETHEUS_MULTIPROC_DIR"),
    # The emulator is on this machine: no proxy between.
    *("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"),
}

COMPANIES = [
    {"name": "Contoso Ltd", "sso_days": 365},
    {"name": "Northwind Traders", "sso_days": None},
]
# username, display name, email, company, role, password, TOTP seed (None: enrols at first sign-in)
OSCAR_SEED = "K7QXHAVR3LMW2NPZ6YDS4TGEBJ5UFC4I"
ACCOUNTS = [
    (
        "ada",
        "Ada Admin",
        "ada@contoso.example",
        "Contoso Ltd",
        "administrator",
        "ada-demo-password",
        "XZCK5ZGGFSLH4YC3YZY5OXHA53BEWHKK",
    ),
    (
        "ben",
        "Ben Berg",
        "ben@contoso.example",
        "Contoso Ltd",
        "member",
        "ben-demo-password",
        "R57IWXYBWTVGEKHEEGIZ6O3MPTJW3PRY",
    ),
    ("cleo", "Cleo Carter", "cleo@contoso.example", "Contoso Ltd", "member", "cleo-demo-password", None),
    (
        "nils",
        "Nils Nilsson",
        "nils@northwind.example",
        "Northwind Traders",
        "member",
        "nils-demo-password",
        "SV4UGW5YBXHYMKB6UDS2OSMEJGQNIMBR",
    ),
    # Operator staff: of no company; the operator admin at /staff/ after the same sign-in.
    ("oscar", "Oscar Operator", "oscar@operator.example", None, "member", "oscar-demo-password", OSCAR_SEED),
]


def demo_environment(port, emulator_port):
    """The demo's settings: its own database, keys, address and Microsoft (the emulator), whatever
    the shell holds (DEMO_OWN). The seeding resets the demo accounts and makes oscar, whose password
    is in the README, a superuser: an installation's database must never be the one it does that
    to, nor its keys and address the ones the demo runs with."""
    from tenantlink.lib import crypto

    env = {name: value for name, value in os.environ.items() if name not in DEMO_OWN}
    if os.environ.get("DEMO_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DEMO_DATABASE_URL"]
    # Production settings (no debug pages, no tracebacks on a page) with the development keys, so
    # that `DEBUG=true manage.py …` reads the same demo database.
    env["SECRET_KEY"] = crypto.DEVELOPMENT_SECRET_KEY
    env["FIELD_ENCRYPTION_KEYS"] = crypto.development_key(env["SECRET_KEY"])
    env["SITE_URL"] = f"http://127.0.0.1:{port}"
    env["ENTRA_AUTHORITY"] = f"http://127.0.0.1:{emulator_port}"
    env["ENTRA_CLIENT_ID"] = DEMO_CLIENT_ID
    env["ENTRA_CLIENT_SECRET"] = DEMO_CLIENT_SECRET
    env["DJANGO_SETTINGS_MODULE"] = "tenantlink.settings"
    # Emails (invitations, notices) printed in this terminal: the demo has no mail server.
    env.setdefault("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    return env


def seed():
    """Create or reset the demo companies and accounts. Returns the accounts for the table."""
    import datetime

    from django.utils import timezone

    from tenantlink.accounts.models import RecoveryCode, Throttle, TOTPDevice, User
    from tenantlink.companies.models import Company, Licence
    from tenantlink.sso.models import CachedDocument, DeclinedOffer, Integration, Leaver

    # The emulator makes new signing keys at every start: keys cached from the last run would
    # refuse its tokens for minutes (an unknown key is fetched again at most every 5 minutes).
    CachedDocument.objects.all().delete()
    Throttle.objects.all().delete()  # no account or address paused by the last run's wrong passwords

    for spec in COMPANIES:
        company, _ = Company.objects.get_or_create(name=spec["name"])
        company.stop_requiring_microsoft()
        # The emulator starts without consent every time, so the portal starts without integrations.
        Integration.objects.filter(company=company).delete()
        if spec["sso_days"]:
            company.grant_licence(Licence.Product.SSO, timezone.now() + datetime.timedelta(days=spec["sso_days"]))
        else:
            company.licences.all().delete()
    for username, name, email, company, role, password, totp_seed in ACCOUNTS:
        user = User.objects.filter(username__iexact=username).first() or User(username=username)
        user.display_name, user.email, user.role = name, email, role
        user.company = Company.objects.get(name=company) if company else None
        user.is_staff = user.is_superuser = company is None
        user.is_active, user.must_change_password = True, False
        user.language, user.time_zone = "", ""  # the browser's language, the portal's time zone
        user.set_password(password)
        user.save()
        user.reset_second_factor()
        Leaver.objects.filter(user=user).delete()
        DeclinedOffer.objects.filter(user=user).delete()  # asked again to sign in with Microsoft
        if totp_seed:
            TOTPDevice.enrol(user, totp_seed, step=0)
            RecoveryCode.replace_for(user)
    return ACCOUNTS


def print_table(url, emulator_url):
    rows = [("username", "password", "TOTP seed", "company", "role")]
    for username, _name, _email, company, role, password, totp_seed in ACCOUNTS:
        who = (company, role) if company else ("—", "operator staff (/staff/)")
        rows.append((username, password, totp_seed or "(set up at first sign-in)", *who))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\nTenantlink demo is running at {url}/")
    print(f"Entra emulator (stand-in for Microsoft) at {emulator_url}/\n")
    for index, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    print("\nAdd a seed to an authenticator app, or print the current code with:")
    print("  .venv/bin/python -c \"import pyotp; print(pyotp.TOTP('SEED').now())\"")
    print("Contoso Ltd holds an SSO licence; Northwind Traders does not.")
    print_microsoft_accounts()
    print("Press Ctrl+C to stop.\n")


def print_microsoft_accounts():
    """The emulator's demo directory: who can approve and who can sign in at "Microsoft"."""
    directory = json.loads(EMULATOR_DIRECTORY.read_text())
    rows = [("Microsoft account", "tenant", "tenant ID", "role")]
    for tenant in directory["tenants"]:
        for person in tenant["users"]:
            role = "administrator" if person.get("admin") else "user"
            rows.append((person["upn"], tenant["display_name"], tenant["id"], role))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\nMicrosoft demo accounts (at the emulator), password for all: Entra-demo-1\n")
    for index, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    print(
        "\nSingle sign-on: sign in as ada, open Single sign-on → Add integration, enter "
        "contoso.onmicrosoft.com and approve at Microsoft as ada@contoso.onmicrosoft.com."
    )
    print(
        f"Leaver check: runs every {LEAVER_CHECK_INTERVAL} s; turn it on for the integration on the Single "
        "sign-on page (README: Leavers lose access)."
    )


def register_redirect_uris(emulator_url, site_url):
    """The demo directory's app knows the default port's callbacks: teach it this portal's."""
    for path in ("/sso/consent/callback/", "/sso/callback/"):
        request = urllib.request.Request(  # noqa: S310 (our own local URL)
            f"{emulator_url}/_emulator/apps/{DEMO_CLIENT_ID}/redirect_uris",
            data=json.dumps({"uri": site_url + path}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (our own local URL)
            pass


def wait_until_up(url, process, timeout=30):
    """True once `url` answers 200; False if the process exits first (say, its port is taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own local URL)
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def port_taken(port):
    """Whether something (another demo, say) listens on 127.0.0.1:`port` already. Asked before
    anything starts: the demo's own readiness check would otherwise get its 200 from the other
    server, and the seeding would reset that demo's database under it."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _port(text):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, not {text!r}")
    return port


def _start(command, env):
    """One of the demo's processes, in a process group of its own (with gunicorn's workers), so
    that stopping the demo can stop all of it; Ctrl+C reaches the demo, which stops them."""
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=_port, default=8000)
    parser.add_argument("--emulator-port", type=_port, default=8400)
    args = parser.parse_args()
    advice = "Choose others with: .venv/bin/python -m tenantlink.demo --port N --emulator-port M"
    if args.port == args.emulator_port:
        sys.exit(f"The portal and the emulator need a port each, not both {args.port}. {advice}")
    taken = [port for port in (args.port, args.emulator_port) if port_taken(port)]
    if taken:
        sys.exit(f"The demo did not start: port {' and '.join(map(str, taken))} is in use already. {advice}")

    env = demo_environment(args.port, args.emulator_port)
    for name in DEMO_OWN - env.keys():  # this process migrates and seeds: not the shell's database
        os.environ.pop(name, None)
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    seed()

    python = sys.executable
    emulator = _start(
        [
            python,
            "-m",
            "entra_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.emulator_port),
            "--directory",
            str(EMULATOR_DIRECTORY),
        ],
        env,
    )
    portal = _start(
        [
            python,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "tenantlink.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            "2",
        ],
        env,
    )
    # The leaver check, as an operator runs it (README: a systemd timer or cron), but every 30 s.
    leaver_check = _start([python, "manage.py", "check_leavers", "--every", str(LEAVER_CHECK_INTERVAL)], env)
    # Stopped by a service manager or `kill`: leave through `finally`, which stops every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ready = False
    try:
        ready = wait_until_up(
            f"{env['ENTRA_AUTHORITY']}/organizations/v2.0/.well-known/openid-configuration", emulator
        ) and wait_until_up(f"{env['SITE_URL']}/health/", portal)
        if ready:
            register_redirect_uris(env["ENTRA_AUTHORITY"], env["SITE_URL"])
            print_table(env["SITE_URL"], env["ENTRA_AUTHORITY"])
        while portal.poll() is None and emulator.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # Stopping already: a second Ctrl+C or SIGTERM must not cut it short and leave them running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in (leaver_check, portal, emulator):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (leaver_check, portal, emulator):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            # Whatever is left of its process group goes too: a gunicorn master killed while its
            # workers still finish requests would leave them holding the port.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    if not ready:
        sys.exit(f"The demo could not start: is port {args.port} or {args.emulator_port} in use? {advice}")


if __name__ == "__main__":
    main()
