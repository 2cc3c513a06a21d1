"""A throw-away PostgreSQL server for the test suite.

    python -m tests.postgres -- CMD ARGS...    start a server, run CMD with DATABASE_URL set, stop it
    with running_postgres() as url: ...        the same from Python, for pytest fixtures

The server lives in a temporary folder, listens on 127.0.0.1 only (its unix socket stays inside
that folder), trusts every connection and never calls fsync: it holds nothing worth keeping, and
it is stopped and removed afterwards whatever happens, Ctrl-C included.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DATABASE = "tenantlink"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; CI runs as root, so the server then runs as this system user.
SERVER_ACCOUNT = "postgres"
# Debian keeps the server programs off PATH, in a folder per major version: 15 (the version the
# suite is written for) first, then any other installed version, newest first.
PACKAGE_BIN_DIRS = ["/usr/lib/postgresql/15/bin"] + sorted(
    glob.glob("/usr/lib/postgresql/[0-9]*/bin"), key=lambda path: int(Path(path).parent.name), reverse=True
)
START_ATTEMPTS = 3


class PostgresError(RuntimeError):
    pass


def find_program(name):
    search = os.pathsep.join([os.environ.get("PATH", ""), *PACKAGE_BIN_DIRS])
    path = shutil.which(name, path=search)
    if path is None:
        raise PostgresError(
            f"{name} was found neither on PATH nor in /usr/lib/postgresql/*/bin. "
            "Install the PostgreSQL 15 server (apt-get install postgresql)."
        )
    return path


def free_port():
    # The port is free now; another process could still take it before the server binds it,
    # which is why starting is retried on "Address already in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_account():
    """The account to run initdb and pg_ctl as: None means "as we are"."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise PostgresError(
            f"PostgreSQL cannot run as root and there is no {SERVER_ACCOUNT!r} system user to run it as "
            "(installing the postgresql package creates one)."
        ) from None


def _as_account(account, argv):
    if account is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", account.pw_name, "--", *argv]
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--", *argv]


def _run(argv, account, cwd, log=None):
    # cwd is the temporary folder: the server account may not be allowed into ours.
    result = subprocess.run(
        _as_account(account, [str(arg) for arg in argv]),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        server_log = log.read_text(errors="replace") if log is not None and log.exists() else ""
        raise PostgresError(
            f"{Path(argv[0]).name} failed with exit code {result.returncode}:\n{result.stdout}"
            + (f"\nServer log:\n{server_log}" if server_log else "")
        )
    return result.stdout


def url_for(port, database=DATABASE):
    return f"postgres://{SUPERUSER}@127.0.0.1:{port}/{database}"


def with_database(url, database):
    """The same server address with another database name."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _connect(url):
    import psycopg  # only needed once a server runs; keeps `--help`-style failures cheap

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or SUPERUSER,
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )


def create_database(url):
    """Create (or empty, by dropping first) the database that `url` names."""
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with _connect(url) as connection:
        # FORCE ends connections left behind by an earlier, interrupted run.
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url


def drop_database(url):
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    with _connect(url) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def running_postgres(database=DATABASE):
    """Start a server in a temporary folder, create `database`, yield its DATABASE_URL, then
    stop the server and remove the folder."""
    initdb, pg_ctl = find_program("initdb"), find_program("pg_ctl")
    account = _server_account()
    root = Path(tempfile.mkdtemp(prefix="tenantlink-pg-"))
    data, log = root / "data", root / "server.log"
    started = False
    try:
        if account is not None:
            os.chown(root, account.pw_uid, account.pw_gid)
        # --no-sync and fsync=off: a crash may lose this server's data, which is fine for a test run.
        _run(
            [
                initdb,
                "-D",
                data,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            account,
            root,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# Throw-away test server\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            try:
                _run([pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", f"-p {port}", "start"], account, root, log)
                started = True
                break
            except PostgresError as error:
                if attempt == START_ATTEMPTS or "Address already in use" not in str(error):
                    raise
        url = create_database(url_for(port, database))
        yield url
    finally:
        if started:
            try:
                _run([pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "30", "stop"], account, root, log)
            except PostgresError:
                _run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], account, root, log)
        shutil.rmtree(root, ignore_errors=True)


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv):
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.postgres -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    # SIGTERM (CI giving up, a supervisor) must still run the clean-up below.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        with running_postgres() as url:
            child = subprocess.Popen(argv, env={**os.environ, "DATABASE_URL": url})
            # Ctrl-C reaches the command too, being in our process group: let it finish its own
            # clean-up (pytest stops its portal and emulator processes) before the server goes.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
            returncode = child.wait()
    except PostgresError as error:
        print(f"tests.postgres: {error}", file=sys.stderr)
        return 1
    return 128 - returncode if returncode < 0 else returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
