"""Responses several endpoints build: pages, JSON errors and the way back to the app."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .errors import AadError, Trace, ms_urlencode

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def emulator_of(request):
    return request.app.state.emulator


def trace_of(request) -> Trace:
    return Trace.for_request(request, emulator_of(request).now())


def render(template: str, status: int = 200, **context) -> HTMLResponse:
    html = templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


def error_page(request, error: AadError, trace: Trace | None = None) -> HTMLResponse:
    """Microsoft's own error page: used where the error must not go back to the app."""
    trace = trace or trace_of(request)
    return render("error.html", status=error.status, error=error, trace=trace, description=error.description(trace))


def json_error(request, error: AadError, trace: Trace | None = None) -> JSONResponse:
    trace = trace or trace_of(request)
    body = error.as_json(trace, emulator_of(request).public_url)
    return JSONResponse(body, status_code=error.status, headers=NO_STORE)


def with_query(uri: str, params: dict) -> str:
    """The URI with the parameters added to its query string (after any it has, before any fragment)."""
    base, hash_mark, fragment = uri.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{ms_urlencode(params)}{hash_mark}{fragment}"


def to_app(redirect_uri: str, response_mode: str, params: dict) -> Response:
    """Sends the result to the app's redirect URI: query string, fragment or auto-posted form."""
    params = {k: v for k, v in params.items() if v is not None}
    if response_mode == "form_post":
        return render("form_post.html", action=redirect_uri, params=params)
    if response_mode == "fragment":
        return RedirectResponse(f"{redirect_uri}#{ms_urlencode(params)}", status_code=302, headers=NO_STORE)
    return RedirectResponse(with_query(redirect_uri, params), status_code=302, headers=NO_STORE)


def error_to_app(
    request, redirect_uri: str, response_mode: str, error: AadError, state: str | None, extra: dict | None = None
) -> Response:
    # Microsoft's order: error, error_description, (error_subcode,) error_uri, then extras such as
    # admin_consent, then state.
    params = {**error.as_params(trace_of(request), emulator_of(request).public_url), **(extra or {})}
    params["state"] = state
    return to_app(redirect_uri, response_mode, params)
