"""The control API under ``/_emulator/``: read and change the directory, rotate keys, inject
faults, move the clock, reset. JSON in, JSON out; for tests and local development only."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.routing import Route

from .directory import Directory, DirectoryError
from .responses import emulator_of


class BadRequest(Exception):
    pass


class NotFound(Exception):
    pass


async def _body(request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _tenant(request):
    tenant = emulator_of(request).directory.find_tenant(request.path_params["tenant"])
    if tenant is None:
        raise NotFound(f"no tenant {request.path_params['tenant']!r}")
    return tenant


def _user(request, tenant):
    user = tenant.find_user(request.path_params["user"])
    if user is None:
        raise NotFound(f"no user {request.path_params['user']!r} in {tenant.domain}")
    return user


def _app(request):
    app = emulator_of(request).directory.find_app(request.path_params["client_id"])
    if app is None:
        raise NotFound(f"no app {request.path_params['client_id']!r}")
    return app


def _from_another_site(request) -> bool:
    """Whether a browser sends this request for a page of another site. Such a page could post a
    form or a text/plain body here (no preflight) while a developer runs the emulator, and add
    redirect URIs, users or faults; or read the directory, secrets and passwords included, under a
    name of its own that it makes resolve to this machine (DNS rebinding: then the browser calls
    it same-origin, but the Host header carries that name). Test clients and curl send neither
    of the browser's headers, and this machine's or the emulator's public name as the host."""
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    known = {"localhost", "::1", urlsplit(emulator_of(request).public_url).hostname}
    if host not in known and not host.startswith("127."):
        return True
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


def endpoint(handler):
    """Turns validation and lookup failures into 400 / 404 JSON answers; refuses (403) what a page
    of another site sends."""

    async def wrapped(request):
        if _from_another_site(request):
            return JSONResponse({"error": "the control API does not answer other sites' pages"}, status_code=403)
        try:
            result = await handler(request)
        except (BadRequest, DirectoryError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return result if isinstance(result, JSONResponse) else JSONResponse(result)

    return wrapped


@endpoint
async def get_directory(request):
    return emulator_of(request).directory.to_dict()


@endpoint
async def replace_directory(request):
    emulator = emulator_of(request)
    emulator.directory = Directory.from_dict(await _body(request))
    return emulator.directory.to_dict()


@endpoint
async def upsert_tenant(request):
    return emulator_of(request).directory.upsert_tenant(await _body(request)).to_dict()


@endpoint
async def update_tenant(request):
    return emulator_of(request).directory.update_tenant(_tenant(request), await _body(request)).to_dict()


@endpoint
async def delete_tenant(request):
    directory = emulator_of(request).directory
    tenant = _tenant(request)
    directory.tenants = [t for t in directory.tenants if t is not tenant]
    return {"deleted": tenant.id}


@endpoint
async def upsert_user(request):
    return emulator_of(request).directory.upsert_user(_tenant(request), await _body(request)).to_dict()


@endpoint
async def update_user(request):
    tenant = _tenant(request)
    return emulator_of(request).directory.update_user(tenant, _user(request, tenant), await _body(request)).to_dict()


def _tenant_without_expired_deletions(request):
    tenant = _tenant(request)
    tenant.purge_deleted_users(emulator_of(request).now_datetime())
    return tenant


@endpoint
async def delete_user(request):
    """Microsoft's delete: the user moves to "Deleted users", restorable for 30 days."""
    tenant = _tenant_without_expired_deletions(request)
    user = _user(request, tenant)
    tenant.delete_user(user, emulator_of(request).now_datetime())
    return {"deleted": user.oid}


@endpoint
async def restore_user(request):
    tenant = _tenant_without_expired_deletions(request)
    user = tenant.find_deleted_user(request.path_params["user"])
    if user is None:
        raise NotFound(f"no deleted user {request.path_params['user']!r} in {tenant.domain} (kept for 30 days)")
    return emulator_of(request).directory.restore_user(tenant, user).to_dict()


@endpoint
async def delete_service_principal(request):
    tenant = _tenant(request)
    if not tenant.remove_service_principal(request.path_params["client_id"].lower()):
        raise NotFound(f"no service principal for {request.path_params['client_id']!r} in {tenant.domain}")
    return tenant.to_dict()


@endpoint
async def upsert_app(request):
    return emulator_of(request).directory.upsert_app(await _body(request)).to_dict()


@endpoint
async def update_app(request):
    return emulator_of(request).directory.update_app(_app(request), await _body(request)).to_dict()


@endpoint
async def add_redirect_uri(request):
    app = _app(request)
    uri = (await _body(request)).get("uri")
    if not isinstance(uri, str) or not uri:
        raise BadRequest('give the redirect URI as {"uri": "..."}')
    uris = app.redirect_uris + ([uri] if uri not in app.redirect_uris else [])
    return emulator_of(request).directory.update_app(app, {"redirect_uris": uris}).to_dict()


@endpoint
async def add_secret(request):
    app = _app(request)
    secret = await _body(request)
    secrets = [s.to_dict() for s in app.secrets] + [secret]
    return emulator_of(request).directory.update_app(app, {"secrets": secrets}).to_dict()


def _keys(emulator) -> dict:
    return {"current": emulator.keys.current.kid, "published": [k.kid for k in emulator.keys.published]}


@endpoint
async def get_keys(request):
    return _keys(emulator_of(request))


@endpoint
async def rotate_keys(request):
    emulator = emulator_of(request)
    emulator.keys.rotate()
    return _keys(emulator)


@endpoint
async def get_faults(request):
    return {"faults": emulator_of(request).faults.to_list()}


@endpoint
async def add_fault(request):
    emulator = emulator_of(request)
    fault = emulator.faults.add(await _body(request))
    return JSONResponse(fault.to_dict(), status_code=201)


@endpoint
async def clear_faults(request):
    emulator_of(request).faults.clear()
    return {"faults": []}


@endpoint
async def advance_clock(request):
    """Moves the emulator's clock forward, e.g. past a code's ten-minute lifetime."""
    seconds = (await _body(request)).get("advance_seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 10**10:
        raise BadRequest('give a non-negative number of seconds as {"advance_seconds": N}')
    emulator = emulator_of(request)
    emulator.clock_offset += seconds
    return {"clock_offset_seconds": emulator.clock_offset}


@endpoint
async def reset(request):
    emulator = emulator_of(request)
    emulator.reset()
    return {"reset": True}


routes = [
    Route("/_emulator/directory", get_directory, methods=["GET"]),
    Route("/_emulator/directory", replace_directory, methods=["PUT"]),
    Route("/_emulator/tenants", upsert_tenant, methods=["POST"]),
    Route("/_emulator/tenants/{tenant}", update_tenant, methods=["PATCH"]),
    Route("/_emulator/tenants/{tenant}", delete_tenant, methods=["DELETE"]),
    Route("/_emulator/tenants/{tenant}/users", upsert_user, methods=["POST"]),
    Route("/_emulator/tenants/{tenant}/users/{user}", update_user, methods=["PATCH"]),
    Route("/_emulator/tenants/{tenant}/users/{user}", delete_user, methods=["DELETE"]),
    Route("/_emulator/tenants/{tenant}/users/{user}/restore", restore_user, methods=["POST"]),
    Route("/_emulator/tenants/{tenant}/service_principals/{client_id}", delete_service_principal, methods=["DELETE"]),
    Route("/_emulator/apps", upsert_app, methods=["POST"]),
    Route("/_emulator/apps/{client_id}", update_app, methods=["PATCH"]),
    Route("/_emulator/apps/{client_id}/redirect_uris", add_redirect_uri, methods=["POST"]),
    Route("/_emulator/apps/{client_id}/secrets", add_secret, methods=["POST"]),
    Route("/_emulator/keys", get_keys, methods=["GET"]),
    Route("/_emulator/keys/rotate", rotate_keys, methods=["POST"]),
    Route("/_emulator/faults", get_faults, methods=["GET"]),
    Route("/_emulator/faults", add_fault, methods=["POST"]),
    Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
    Route("/_emulator/clock", advance_clock, methods=["POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
]
