"""Entra emulator: a stand-in for Microsoft's identity platform (login.microsoftonline.com v2.0
endpoints and Graph ``/v1.0/me``) for development and tests. Run ``python -m entra_emulator``."""

from pathlib import Path

DEMO_DIRECTORY = Path(__file__).parent / "demo_directory.json"
