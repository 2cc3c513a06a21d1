from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _


def require_password_change(get_response):
    """A user signed in with an initial password set by an administrator changes it first."""

    def middleware(request):
        user = request.user
        if user.is_authenticated and user.must_change_password:
            allowed = (reverse("change_password"), reverse("signout"), reverse("new_recovery_codes"))
            if request.path not in allowed and not request.path.startswith("/static/"):
                messages.info(request, _("Please choose a new password before you continue."))
                return redirect("change_password")
        return get_response(request)

    return middleware
