from django.contrib.auth.backends import ModelBackend

from tenantlink.accounts.models import User


class AccountBackend(ModelBackend):
    """Django's username + password backend. The signed-in user of every request comes with
    their company in the same query: nearly every page shows or checks it."""

    def get_user(self, user_id):
        user = User.objects.select_related("company").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
