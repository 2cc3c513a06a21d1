from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from django.views.i18n import set_language

from tenantlink import views
from tenantlink.accounts.views import company, profile, signin
from tenantlink.audit import views as audit
from tenantlink.sso.views import connect, integrations, leavers, requirement
from tenantlink.sso.views import signin as microsoft_signin

# The operator admin's own name, not Django's ("Django administration")
admin.site.site_header = admin.site.site_title = _("Tenantlink operator admin")
admin.site.index_title = _("Customers, licences and the audit log")

urlpatterns = [
    path("", views.home, name="home"),
    path("portal/", views.portal, name="portal"),
    # Operations: liveness (no database), readiness (/health/ is readiness too), Prometheus metrics
    path("health/", views.health, name="health"),
    path("health/live/", views.live, name="health_live"),
    path("health/ready/", views.health, name="health_ready"),
    path("metrics", views.metrics_page, name="metrics"),
    path("metrics/leavers", views.leaver_metrics_page, name="metrics_leavers"),
    # Flow 1: password sign-in
    path("signin/", signin.signin, name="signin"),
    path("signin/verify/", signin.signin_verify, name="signin_verify"),
    path("signin/enrol/", signin.signin_enrol, name="signin_enrol"),
    path("signout/", signin.signout, name="signout"),
    # The sign-in page's language switch: a plain form, sets the language cookie
    path("language/", set_language, name="set_language"),
    # Flows 3–5: sign in with Microsoft, connect and disconnect a Microsoft account
    path("sso/signin/", microsoft_signin.start, name="sso_signin"),
    path("sso/callback/", microsoft_signin.callback, name="sso_callback"),
    path("sso/signout/", microsoft_signin.sign_out_at_microsoft, name="sso_signout"),
    path("sso/offer/", connect.offer, name="sso_offer"),
    path("sso/offer/decline/", connect.decline, name="sso_decline"),
    path("sso/connect/", connect.connect, name="sso_connect"),
    path("sso/required/", requirement.refused, name="sso_required"),
    path("profile/microsoft/disconnect/", connect.disconnect_own, name="sso_disconnect"),
    path(
        "company/users/<int:user_id>/microsoft/disconnect/",
        connect.disconnect_member,
        name="company_user_microsoft_disconnect",
    ),
    path("invitation/<str:uidb64>/<str:token>/", signin.accept_invitation, name="accept_invitation"),
    # My Profile
    path("profile/", profile.overview, name="profile"),
    path("profile/settings/", profile.settings_tab, name="profile_settings"),
    path("profile/password/", profile.change_password, name="change_password"),
    path("profile/confirm-password/", profile.reauthenticate, name="reauthenticate"),
    path("profile/authenticator/", profile.reenrol_totp, name="reenrol_totp"),
    path("profile/recovery-codes/", profile.regenerate_recovery_codes, name="regenerate_recovery_codes"),
    path("profile/recovery-codes/new/", profile.new_recovery_codes, name="new_recovery_codes"),
    # Company administrators
    path("company/users/", company.user_list, name="company_users"),
    path("company/users/new/", company.user_create, name="company_user_create"),
    path("company/users/<int:user_id>/", company.user_detail, name="company_user"),
    path("company/users/<int:user_id>/edit/", company.user_edit, name="company_user_edit"),
    path("company/users/<int:user_id>/deactivate/", company.user_deactivate, name="company_user_deactivate"),
    path("company/users/<int:user_id>/reactivate/", company.user_reactivate, name="company_user_reactivate"),
    path(
        "company/users/<int:user_id>/reset-second-factor/",
        company.user_reset_second_factor,
        name="company_user_reset_second_factor",
    ),
    path("company/users/<int:user_id>/invite/", company.user_resend_invitation, name="company_user_invite"),
    # Flow 2: single sign-on integrations (company administrators)
    path("company/sso/", integrations.overview, name="sso_integrations"),
    path("company/sso/add/", integrations.add, name="sso_integration_add"),
    path("company/sso/<int:integration_id>/consent/", integrations.retry_consent, name="sso_integration_consent"),
    path("company/sso/<int:integration_id>/verify/", integrations.verify, name="sso_integration_verify"),
    path("company/sso/<int:integration_id>/disable/", integrations.disable, name="sso_integration_disable"),
    path("company/sso/<int:integration_id>/enable/", integrations.enable, name="sso_integration_enable"),
    path("company/sso/<int:integration_id>/delete/", integrations.delete, name="sso_integration_delete"),
    path("sso/consent/callback/", integrations.consent_callback, name="sso_consent_callback"),
    # Require Microsoft sign-in for members (company administrators)
    path("company/sso/require/", requirement.review, name="sso_require"),
    path("company/sso/require/off/", requirement.turn_off, name="sso_require_off"),
    # The leaver check of an integration
    path("company/sso/<int:integration_id>/leavers/", leavers.turn_on, name="sso_leavers_on"),
    path("company/sso/<int:integration_id>/leavers/off/", leavers.turn_off, name="sso_leavers_off"),
    path("company/sso/<int:integration_id>/leavers/policy/", leavers.change_policy, name="sso_leavers_policy"),
    path("company/sso/<int:integration_id>/leavers/confirm/", leavers.confirm, name="sso_leavers_confirm"),
    path("company/audit/", audit.audit_log, name="audit_log"),
    path("company/audit/export.csv", audit.audit_export, name="audit_export"),
    path("company/audit/<int:event_id>/", audit.audit_event, name="audit_event"),
    # Operator staff use the Django admin, but sign in through the portal (password + second factor).
    path("staff/login/", views.staff_signin),
    # ...and sign out and change their own password there too, where it is throttled and audited.
    path("staff/logout/", signin.signout),
    path("staff/password_change/", RedirectView.as_view(pattern_name="change_password")),
    path("staff/password_change/done/", RedirectView.as_view(pattern_name="change_password")),
    path("staff/", admin.site.urls),
]

handler400 = "tenantlink.lib.errors.bad_request"
handler403 = "tenantlink.lib.errors.permission_denied"
handler404 = "tenantlink.lib.errors.page_not_found"
handler500 = "tenantlink.lib.errors.server_error"
