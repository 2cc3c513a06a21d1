from django.contrib.auth.backends import ModelBackend

from tenantlink.accounts.models import User
from tenantlink.accounts.sessions import take_loaded_user


class AccountBackend(ModelBackend):
    """Django's username + password backend. The signed-in user of every request comes with
    their company in the same query: nearly every page shows or checks it."""

    def get_user(self, user_id):
        user = take_loaded_user(user_id)  # read with the session, in the same query
        if user is not None:
            return user if self.user_can_authenticate(user) else None
        try:
            user = User.objects.select_related("company").get(pk=user_id)  # get(): no ORDER BY
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
