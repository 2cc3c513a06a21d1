"""End-to-end tests and the test-only tooling they need (a throw-away PostgreSQL server)."""
