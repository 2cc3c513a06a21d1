"""``python -m entra_emulator``: serve the emulator.

    python -m entra_emulator --port 8400 --directory entra_emulator/demo_directory.json
    python -m entra_emulator --port 0 --https --tls-dir /tmp/entra-tls   # free port, TLS

The first line printed is ``Entra emulator serving <base URL>``; with ``--port 0`` it names the
port that was chosen, so a test harness can read it. With ``--public-url`` the next line is
``  listening   <local URL>``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
from pathlib import Path

import uvicorn

from . import DEMO_DIRECTORY
from .app import create_app
from .directory import DirectoryError
from .state import Emulator


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m entra_emulator", description="Serve the Entra emulator (Microsoft identity platform stand-in)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8400, help="port to listen on; 0 picks a free one (default 8400)")
    parser.add_argument(
        "--directory",
        type=Path,
        default=DEMO_DIRECTORY,
        help="directory JSON file (default: the bundled demo directory)",
    )
    parser.add_argument("--public-url", help="base URL clients use, and the issuer base (default: from host and port)")
    parser.add_argument("--https", action="store_true", help="serve TLS with a certificate from a local test CA")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="with --https: where ca.pem (to trust) and server.pem are written (default: a temp dir)",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def _write_tls_files(tls_dir: Path) -> tuple[Path, Path]:
    import trustme

    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Entra emulator development CA")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_file, server_file = tls_dir / "ca.pem", tls_dir / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server.private_key_and_cert_chain_pem.write_to_path(str(server_file))
    return ca_file, server_file


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        directory_data = json.loads(args.directory.read_text())
    except (OSError, ValueError) as exc:
        print(f"Cannot read the directory file {args.directory}: {exc}", file=sys.stderr)
        return 2
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    scheme = "https" if args.https else "http"
    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    listen_url = f"{scheme}://{host_in_url}:{port}"
    public_url = (args.public_url or listen_url).rstrip("/")
    try:
        emulator = Emulator(directory_data, public_url)
    except DirectoryError as exc:
        print(f"The directory file {args.directory} is not valid: {exc}", file=sys.stderr)
        return 2

    ssl_options = {}
    if args.https:
        tls_dir = args.tls_dir or Path(tempfile.mkdtemp(prefix="entra-emulator-tls-"))
        ca_file, server_file = _write_tls_files(tls_dir)
        ssl_options = {"ssl_certfile": str(server_file)}

    print(f"Entra emulator serving {public_url}", flush=True)
    if public_url != listen_url:
        print(f"  listening   {listen_url}", flush=True)
    for tenant in emulator.directory.tenants:
        print(f"  tenant  {tenant.display_name:<12} {tenant.id}  {tenant.domain}", flush=True)
    for app in emulator.directory.apps:
        print(f"  app     {app.display_name:<12} {app.client_id}", flush=True)
    print(f"  discovery   {public_url}/organizations/v2.0/.well-known/openid-configuration", flush=True)
    print(f"  control API {public_url}/_emulator/directory", flush=True)
    if args.https:
        print(f"  TLS CA      {ca_file}  (trust this file in clients)", flush=True)

    config = uvicorn.Config(create_app(emulator), log_level=args.log_level, timeout_graceful_shutdown=2, **ssl_options)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
