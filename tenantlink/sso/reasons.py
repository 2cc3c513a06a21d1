"""Why a consent, a verification or a Microsoft sign-in did not succeed, in words an administrator
or a person signing in understands. The key is what is stored (Integration.failure_reason) and
what MicrosoftError.reason names; Microsoft's raw error code goes to the audit log, and next to
the text, never instead of it."""

from django.utils.translation import gettext_lazy as _

GRANT_ADMIN_CONSENT = _(
    "If approving alone is not enough, open the Microsoft Entra admin center, go to Enterprise "
    "applications → %(app)s → Permissions and choose “Grant admin consent for your organization”, "
    "then come back and choose “Verify again”."
)
FAILURE_REASONS = {
    "declined": _("The Microsoft administrator declined the permissions, so nothing was changed."),
    "cancelled": _(
        "The approval at Microsoft was cancelled or did not finish. This also happens when the "
        "Microsoft account used there may not approve apps for the whole organization: sign in at "
        "Microsoft as a Global Administrator, Cloud Application Administrator or Application "
        "Administrator of the tenant."
    ),
    "approval_required": _("Microsoft says an administrator must approve the app for the whole organization."),
    "wrong_tenant": _(
        "The Microsoft account used at Microsoft belongs to another organization (tenant). "
        "Sign in there with an administrator account of this tenant."
    ),
    "app_not_found": _(
        "Microsoft does not (or no longer) know the app in this tenant: the approval has not been "
        "completed, or the app was removed from the tenant's Enterprise applications."
    ),
    "unknown_tenant": _("Microsoft does not know this tenant. Check the tenant ID."),
    "tenant_taken": _(
        "This tenant is already connected to another company in the portal, so it was not connected "
        "here. If the tenant is your organization's, contact the portal's support."
    ),
    "refused": _("Microsoft refused the request."),
    "code_expired": _(
        "Microsoft's answer came too late or a second time, so it no longer counts. Nothing was changed. "
        "Please start again."
    ),
    "approval_propagating": _(
        "Microsoft says the app was approved but does not confirm it yet: an approval can take a few "
        "minutes to reach all of Microsoft's servers. Choose “Verify again” in a few minutes. If it "
        "still fails then, approve it again."
    ),
    "sign_in_pending": _(
        "One step is left: someone of the organization whose tenant it is signs in there once, usually "
        "without being asked anything. Choose “Verify again” to do it now."
    ),
    "tenant_sign_in": _(
        "Microsoft did not sign you in at the tenant, so the integration does not work yet. Choose "
        "“Verify again” and sign in there with an account of the organization whose tenant it is."
    ),
    "guest": _(
        "The Microsoft account used is a guest in this tenant, and a guest cannot show that the tenant "
        "is your organization's. Choose “Verify again” and sign in with an account of the organization itself."
    ),
    "unavailable": _("Microsoft could not be reached or did not answer in time. Try again in a few minutes."),
    "busy": _(
        "Microsoft is answering slowly, and this portal has many sign-ins waiting for it already. "
        "Try again in a few minutes."
    ),
    "turned_off": _("The leaver check was turned off while you were at Microsoft, so it stays off."),
    "throttled": _(
        "Microsoft asked the portal to wait (too many requests), so nobody was checked this time. "
        "The next run tries again."
    ),
    "bad_answer": _("Microsoft gave an answer that could not be understood. Try again in a few minutes."),
    "bad_token": _("Microsoft's answer did not pass the portal's security checks, so it was not accepted."),
    "new_key": _(
        "Microsoft signed its answer with a key the portal does not know yet. Microsoft changes its keys "
        "from time to time, and the portal fetches the new ones within a few minutes: try again in a few minutes."
    ),
    "configuration": _(
        "This installation's registration at Microsoft was refused (for example an expired client "
        "secret). The operator of this portal has to fix it; nothing needs to change in your tenant."
    ),
    "permission_missing": _(
        "Microsoft does not (or no longer) let the portal read whether your users' accounts are enabled "
        "(the permission “Read all users' full profiles”, User.Read.All). Only a Global Administrator or "
        "Privileged Role Administrator of the tenant can grant it: turn the leaver check on again and "
        "approve at Microsoft with such an account."
    ),
}
# After these, approving again (or "Grant admin consent") is what helps.
NEEDS_ADMIN_CONSENT = {"cancelled", "approval_required", "app_not_found"}
