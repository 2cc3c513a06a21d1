from django.conf import settings
from django.contrib import messages
from django.contrib.auth.middleware import AuthenticationMiddleware, get_user
from django.contrib.sessions.middleware import SessionMiddleware
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _


class Sessions(SessionMiddleware):
    """Django's SessionMiddleware, except that a cookie naming no session (gone, or never one)
    is left as it is unless this request ended the session itself (signing out). Django deletes
    it: a request of the browser's that read its session just after another request replaced it
    (a code or a Microsoft answer sent twice; the first signs in under a new key) would delete the
    new cookie too, and sign out the person who had just signed in. For the same reason a cookie
    is sent only with a new key, never again with the key the browser sent."""

    def process_response(self, request, response):
        session = getattr(request, "session", None)
        if (
            session is not None
            and session.accessed
            and not session.modified
            and session.is_empty()
            and settings.SESSION_COOKIE_NAME in request.COOKIES
        ):
            patch_vary_headers(response, ("Cookie",))
            return response
        response = super().process_response(request, response)
        # The browser has this key already: sent again, it could arrive after another request
        # of the browser's replaced the key (signing in in another tab), and take the browser back
        # to the old one, signed out. Its lifetime is kept by the server, not the cookie's age.
        name = settings.SESSION_COOKIE_NAME
        sent = response.cookies.get(name)
        if sent is not None and sent.value and sent.value == request.COOKIES.get(name):
            del response.cookies[name]
        return response


class Authentication(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware with request.user the user itself, not a lazy stand-in
    for it: every request reads it anyway (require_password_change below), and every attribute
    read through the stand-in costs a failed lookup and two calls — a page makes dozens."""

    def process_request(self, request):
        super().process_request(request)
        request.user = get_user(request)


def require_password_change(get_response):
    """A user signed in with an initial password set by an administrator changes it first."""

    def middleware(request):
        user = request.user
        if user.is_authenticated and user.must_change_password:
            allowed = (reverse("change_password"), reverse("signout"), reverse("new_recovery_codes"))
            if request.path not in allowed and not request.path_info.startswith("/static/"):
                messages.info(request, _("Please choose a new password before you continue."))
                return redirect("change_password")
        return get_response(request)

    return middleware
