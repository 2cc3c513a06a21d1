"""The Starlette application: metadata endpoints (discovery, keys), fault injection, and the
routing table that brings in sign-in, token, Graph and control endpoints."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import control, errors, grants, graph, signin
from .faults import endpoint_of
from .responses import emulator_of, error_page, json_error, render
from .state import Emulator

JSON = "application/json"
# Half an answer, not valid UTF-8: what a broken proxy or a cut connection leaves a client with.
GARBAGE_BODY = b'{"error": {"code": "\xff\xfe<html><body>502 Bad Gat'


def discovery_document(emulator: Emulator, tenant) -> dict:
    base = emulator.public_url
    # Endpoints of a named tenant use its GUID even when it was addressed by domain.
    segment = tenant.id if tenant else "{alias}"
    issuer = emulator.issuer(tenant.id) if tenant else emulator.issuer_template
    return {
        "token_endpoint": f"{base}/{segment}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/{segment}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/authorize",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{segment}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": "EU" if tenant else None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        # Graph is served by the emulator itself.
        "msgraph_host": urlsplit(base).netloc,
        "rbac_url": "https://pas.windows.net",
    }


async def discovery(request):
    emulator = emulator_of(request)
    ref = request.path_params["tenant"]
    try:
        tenant = emulator.resolve_authority(ref)
    except errors.AadError as error:
        return json_error(request, error)
    document = discovery_document(emulator, tenant)
    if tenant is None:
        for key, value in document.items():
            if isinstance(value, str):
                document[key] = value.replace("{alias}", ref.lower())
    return JSONResponse(document, headers={"Cache-Control": "max-age=86400, private"})


async def jwks(request):
    emulator = emulator_of(request)
    try:
        tenant = emulator.resolve_authority(request.path_params["tenant"])
    except errors.AadError as error:
        return json_error(request, error)
    issuer = emulator.issuer(tenant.id) if tenant else emulator.issuer_template
    return JSONResponse(emulator.keys.jwks(issuer), headers={"Cache-Control": "max-age=86400, private"})


async def error_lookup(request):
    code = request.query_params.get("code", "")
    return render("lookup.html", code=code)


async def home(request):
    emulator = emulator_of(request)
    return render("home.html", emulator=emulator, directory=emulator.directory)


class FaultMiddleware:
    """Applies endpoint faults (an error status, or a hang) before the request is handled."""

    def __init__(self, app, emulator: Emulator):
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope, receive, send):
        endpoint = endpoint_of(scope["path"]) if scope["type"] == "http" else None
        fault = self.emulator.faults.take_http_fault(endpoint) if endpoint else None
        if fault and fault.hang_seconds:
            await asyncio.sleep(fault.hang_seconds)
        if fault and fault.status:
            response = _fault_response(Request(scope, receive), endpoint, fault)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _fault_response(request, endpoint: str, fault) -> Response:
    """The failing answer a fault asks for, in the shape of the endpoint (or garbled)."""
    pages = endpoint in ("authorize", "adminconsent", "other")
    if fault.garbage_body:
        response = Response(GARBAGE_BODY, status_code=fault.status, media_type="text/html" if pages else JSON)
    elif endpoint == "graph":
        response = graph.error_response(request, graph.unavailable(fault.status))
    else:
        error = errors.service_unavailable(fault.status)
        error.status = fault.status
        response = error_page(request, error) if pages else json_error(request, error)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


async def client_gone(request, exc: ClientDisconnect):
    """The client gave up before its body was read (a portal whose timeout a hang fault outlasted):
    nobody is left to answer, and nothing went wrong here, so no traceback in the log."""
    return Response(status_code=499)


async def http_error(request, exc: HTTPException):
    """Wrong methods and unparseable bodies answered in the shape of the endpoint that was hit,
    like Microsoft's AADSTS900561, instead of Starlette's plain text."""
    path, headers = request.url.path, dict(exc.headers or {})
    if path.startswith("/_emulator"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)
    if exc.status_code == 405:
        allowed = [m for m in headers.get("Allow", "").split(", ") if m and m != "HEAD"]
        error = errors.AadError(
            "invalid_request",
            900561,
            f"The endpoint only accepts {', '.join(allowed)} requests. Received a {request.method} request.",
            status=405,
        )
    elif exc.status_code == 400:
        error = errors.invalid_request()
    else:
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)
    endpoint = endpoint_of(path)
    if endpoint == "graph":
        message = "Specified HTTP method is not allowed for the request target."
        response = graph.error_response(
            request, graph.GraphError(error.status, "BadRequest", message if error.status == 405 else exc.detail)
        )
    elif endpoint in ("token", "discovery", "jwks"):
        response = json_error(request, error)
    else:
        response = error_page(request, error)
    response.headers.update(headers)
    return response


def create_app(emulator: Emulator) -> Starlette:
    routes = [
        Route("/", home),
        Route("/error", error_lookup),
        *graph.routes,
        *control.routes,
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
        Route("/{tenant}/discovery/v2.0/keys", jwks),
        Route("/{tenant}/oauth2/v2.0/token", grants.token, methods=["POST"]),
        *signin.routes,
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, ClientDisconnect: client_gone})
    app.state.emulator = emulator
    app.add_middleware(FaultMiddleware, emulator=emulator)
    return app
