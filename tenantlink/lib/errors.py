"""Friendly error pages. None of them shows internals, whatever DEBUG says."""

from django.shortcuts import render
from django.utils.translation import gettext as _


def _error(request, status, title, message):
    return render(request, "error.html", {"title": title, "message": message, "status": status}, status=status)


def bad_request(request, exception=None):
    return _error(request, 400, _("Bad request"), _("The request could not be understood. Go back and try again."))


def permission_denied(request, exception=None):
    return _error(request, 403, _("Not allowed"), _("You do not have permission to open this page."))


def page_not_found(request, exception=None):
    return _error(
        request, 404, _("Page not found"), _("There is nothing here. Check the address, or go back to the portal.")
    )


def server_error(request):
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


def csrf_failure(request, reason=""):
    return _error(
        request,
        403,
        _("The form has expired"),
        _("For your security the form could not be accepted. Go back, reload the page and try again."),
    )
