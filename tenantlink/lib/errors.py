"""Friendly error pages. None of them shows internals, whatever DEBUG says."""

import sys

from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from tenantlink.lib.context import site

# A database that is still busy after its timeout, or that does not answer at all: not a bug,
# and over by itself, so the visitor is asked to come back rather than shown the crash page.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER = 30  # seconds

# A form over DATA_UPLOAD_MAX_MEMORY_SIZE, or with more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields or
# DATA_UPLOAD_MAX_NUMBER_FILES files: Django refuses it before any view sees it.
TOO_LARGE = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def _error(request, status, title, message):
    return render(request, "error.html", {"title": title, "message": message, "status": status}, status=status)


def bad_request(request, exception=None):
    if isinstance(exception, TOO_LARGE):
        return _error(
            request,
            400,
            _("The form was too large"),
            _("The form held too much to be sent, so nothing was saved. Go back and try again with less."),
        )
    if isinstance(exception, SessionInterrupted):  # signed out, in another tab say, while the view ran
        request.user = AnonymousUser()  # the page's header must not name who is signed out
        return _error(
            request,
            400,
            _("Signed out meanwhile"),
            _(
                "You were signed out (in another tab or window, perhaps) while this page was on its way. What "
                "you asked for may have been done: sign in again and check."
            ),
        )
    return _error(request, 400, _("Bad request"), _("The request could not be understood. Go back and try again."))


def nul_character(request):
    return _error(
        request,
        400,
        _("Bad request"),
        _("The address or the form held a character that cannot be used (a NUL character). Go back and try again."),
    )


def permission_denied(request, exception=None):
    return _error(request, 403, _("Not allowed"), _("You do not have permission to open this page."))


def page_not_found(request, exception=None):
    return _error(
        request, 404, _("Page not found"), _("There is nothing here. Check the address, or go back to the portal.")
    )


def server_error(request):
    # Django calls this inside its `except`, also for errors raised in a middleware (loading or
    # saving the session), which the `unavailable` middleware never sees.
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return service_unavailable(request)
    return _error(
        request, 500, _("Something went wrong"), _("The error has been logged. Please try again in a moment.")
    )


def method_not_allowed(request, allowed):
    response = _error(
        request, 405, _("Not possible here"), _("This page cannot be used that way. Go back and use its buttons.")
    )
    response["Allow"] = allowed
    return response


def too_many_requests(request):
    return _error(request, 429, _("Too many requests"), _("Please wait a few minutes before you try again."))


def service_unavailable(request):
    # Rendered without the request: its context processors would read the session and the user
    # from the database that has just failed, and wait for it all over again.
    context = {
        **site(request),
        "title": _("Temporarily unavailable"),
        "message": _("The portal cannot answer right now. Please wait a moment and try again."),
        "status": 503,
    }
    response = HttpResponse(render_to_string("error.html", context), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


def csrf_failure(request, reason=""):
    return _error(
        request,
        403,
        _("The form has expired"),
        _("For your security the form could not be accepted. Go back, reload the page and try again."),
    )
