from django.contrib import messages
from django.contrib.auth.middleware import AuthenticationMiddleware, get_user
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _


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
