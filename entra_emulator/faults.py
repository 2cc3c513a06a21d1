"""Fault injection: broken ID tokens and failing, throttled, garbled or hanging endpoints, on demand.

A fault is added through ``POST /_emulator/faults`` and applies to the next ``times`` ID tokens,
requests or (with ``batch_item``) requests inside a Graph ``$batch`` (an integer, default 1, or
``"always"``). ``POST /_emulator/reset`` clears them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

TOKEN_FAULTS = (
    "wrong_iss",
    "wrong_aud",
    "missing_aud",
    "missing_sub",
    "missing_iat",
    "expired",
    "future_nbf",
    "wrong_nonce",
    "bad_signature",
    "alg_none",
    "hs256_client_secret",
    "unknown_kid",
    "rotated_kid",
    "tid_mismatch",
)
ENDPOINTS = ("token", "authorize", "discovery", "jwks", "adminconsent", "graph", "*")
MAX_HANG_SECONDS = 300
MAX_RETRY_AFTER = 3600


@dataclass
class Fault:
    id: int
    remaining: int | None  # None: always
    token_fault: str | None = None
    endpoint: str | None = None
    status: int | None = None
    hang_seconds: float = 0
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    garbage_body: bool = False  # a body that is not the endpoint's JSON or page
    batch_item: bool = False  # hits one request inside a Graph $batch, not a whole HTTP request

    def to_dict(self) -> dict:
        data = {"id": self.id, "times": "always" if self.remaining is None else self.remaining}
        if self.token_fault:
            data["fault"] = self.token_fault
            return data
        data.update(endpoint=self.endpoint, status=self.status, hang_seconds=self.hang_seconds)
        for key in ("retry_after", "garbage_body", "batch_item"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


def endpoint_of(path: str) -> str | None:
    """Which fault-injectable endpoint a request path belongs to (None for the control API)."""
    if path.startswith("/_emulator"):
        return None
    if path.endswith("/.well-known/openid-configuration"):
        return "discovery"
    if path.endswith("/discovery/v2.0/keys") or path.endswith("/discovery/keys"):
        return "jwks"
    if path.endswith("/oauth2/v2.0/token"):
        return "token"
    if path.endswith("/oauth2/v2.0/authorize"):
        return "authorize"
    if path.endswith("/v2.0/adminconsent"):
        return "adminconsent"
    if path.startswith("/v1.0/") or path == "/oidc/userinfo":
        return "graph"
    return "other"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _endpoint_fault(fault_id: int, remaining: int | None, spec: dict) -> Fault:
    endpoint = spec["endpoint"]
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}")
    garbage, batch_item = spec.get("garbage_body", False), spec.get("batch_item", False)
    if not isinstance(garbage, bool) or not isinstance(batch_item, bool):
        raise ValueError("'garbage_body' and 'batch_item' must be true or false")
    # A garbled body may come with a success status: that is what a client most easily trusts.
    status = spec.get("status", 200 if garbage else None)
    if status is not None and not (_is_int(status) and (200 if garbage else 400) <= status <= 599):
        raise ValueError("'status' must be an HTTP error status such as 500 or 503")
    hang = spec.get("hang_seconds", 0)
    if not isinstance(hang, (int, float)) or isinstance(hang, bool) or not 0 <= hang <= MAX_HANG_SECONDS:
        raise ValueError(f"'hang_seconds' must be a number from 0 to {MAX_HANG_SECONDS}")
    if status is None and not hang:
        raise ValueError("an endpoint fault needs 'status', 'hang_seconds' or 'garbage_body'")
    retry_after = spec.get("retry_after")
    if retry_after is not None and not (status and _is_int(retry_after) and 0 <= retry_after <= MAX_RETRY_AFTER):
        raise ValueError(f"'retry_after' goes with a 'status' and is a whole number from 0 to {MAX_RETRY_AFTER}")
    if batch_item and (endpoint != "graph" or hang or garbage or status is None):
        raise ValueError("a 'batch_item' fault is a Graph fault with a 'status' (and 'retry_after'), nothing else")
    return Fault(
        fault_id,
        remaining,
        endpoint=endpoint,
        status=status,
        hang_seconds=hang,
        retry_after=retry_after,
        garbage_body=garbage,
        batch_item=batch_item,
    )


class FaultBook:
    def __init__(self):
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict) -> Fault:
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        times = spec.get("times", 1)
        if times == "always":
            remaining = None
        elif isinstance(times, int) and not isinstance(times, bool) and times > 0:
            remaining = times
        else:
            raise ValueError("'times' must be a positive integer or \"always\"")

        if "fault" in spec:
            if spec["fault"] not in TOKEN_FAULTS:
                raise ValueError(f"unknown fault {spec['fault']!r}; known: {', '.join(TOKEN_FAULTS)}")
            fault = Fault(next(self._ids), remaining, token_fault=spec["fault"])
        elif "endpoint" in spec:
            fault = _endpoint_fault(next(self._ids), remaining, spec)
        else:
            raise ValueError("a fault needs either 'fault' (an ID-token fault) or 'endpoint'")
        self._faults.append(fault)
        return fault

    def _consume(self, fault: Fault) -> None:
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)

    def take_token_faults(self) -> list[str]:
        """The ID-token faults to apply to the token being issued now, each used up once."""
        taken = [f for f in self._faults if f.token_fault]
        for fault in taken:
            self._consume(fault)
        return [f.token_fault for f in taken]

    def take_http_fault(self, endpoint: str) -> Fault | None:
        return self._take(
            lambda f: f.endpoint and not f.batch_item and (f.endpoint == endpoint or (f.endpoint == "*" and endpoint))
        )

    def take_batch_item_fault(self) -> Fault | None:
        return self._take(lambda f: f.batch_item)

    def _take(self, matches) -> Fault | None:
        fault = next((f for f in self._faults if matches(f)), None)
        if fault:
            self._consume(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def to_list(self) -> list[dict]:
        return [f.to_dict() for f in self._faults]
