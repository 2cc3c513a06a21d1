"""Django's PostgreSQL backend (the ENGINE for postgres:// URLs), with a cheaper health check.

With CONN_HEALTH_CHECKS Django asks the server `SELECT 1` before the first query of every
request, so that a persistent connection broken by a database restart is replaced instead of
failing the request. Under load that is a round trip on every request for a connection that
answered a moment ago. Here a connection whose previous request began using it less than
RECENTLY_USED seconds ago is not asked again (connection pools do the same: HikariCP's "alive
bypass window"). A restart inside that window fails one request per kept connection (each thread
of each worker keeps its own) with the 503 page; Django then closes that connection (the request
had a database error) and the thread's next request opens a new one.
"""

import time

from django.db.backends.postgresql import base

RECENTLY_USED = 1.0  # seconds


class DatabaseWrapper(base.DatabaseWrapper):
    _first_use = float("-inf")  # monotonic time the last request began using this connection

    def close_if_health_check_failed(self):
        if self.connection is not None and self.health_check_enabled and not self.health_check_done:
            now = time.monotonic()
            if now - self._first_use < RECENTLY_USED:
                self.health_check_done = True
            self._first_use = now
        super().close_if_health_check_failed()

    def connect(self):
        super().connect()
        self._first_use = time.monotonic()
