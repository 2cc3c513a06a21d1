import re

from django import forms
from django.utils.translation import gettext_lazy as _

from tenantlink.lib.validators import plain_text
from tenantlink.sso import microsoft
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import Integration

# contoso.onmicrosoft.com, login.contoso.com: labels of letters, digits and hyphens.
DOMAIN = re.compile(r"(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
# Names Microsoft gives to many tenants at once, not to one organization's.
EVERY_ORGANIZATION = {"common", "organizations"}
PERSONAL_ACCOUNTS = {"consumers", microsoft.PERSONAL_ACCOUNTS_TENANT}


PERSONAL_ACCOUNTS_REFUSED = _("Personal Microsoft accounts cannot be used. Enter your organization's tenant.")


class AddIntegrationForm(forms.Form):
    tenant = forms.CharField(
        label=_("Tenant ID or domain"),
        max_length=253,
        help_text=_(
            "The Tenant ID from the Overview page of the Microsoft Entra admin center, such as "
            "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47, or your tenant's domain, such as contoso.onmicrosoft.com."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none", "autofocus": True}
        ),
    )
    display_name = forms.CharField(
        label=_("Name (optional)"),
        max_length=200,
        required=False,
        help_text=_("How the integration is listed here. Without a name the domain or tenant ID is used."),
        validators=[plain_text],
    )

    def __init__(self, company, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.company = company
        self.tenant_id = None
        self.existing = None  # the company's integration of this tenant, not working yet: approved again

    def clean_tenant(self):
        # Pasted text often carries spaces, braces round a GUID, or the root dot of a domain name.
        value = self.cleaned_data["tenant"].strip().strip("{}").removesuffix(".").lower()
        if value in EVERY_ORGANIZATION:
            raise forms.ValidationError(
                _(
                    "“%(value)s” stands for every organization at Microsoft. Enter your own organization's "
                    "tenant ID or domain (such as contoso.onmicrosoft.com)."
                ),
                params={"value": value},
            )
        if value in PERSONAL_ACCOUNTS:
            raise forms.ValidationError(PERSONAL_ACCOUNTS_REFUSED)
        if not microsoft.GUID.match(value) and not DOMAIN.match(value):
            raise forms.ValidationError(
                _(
                    "This is neither a tenant ID (32 hexadecimal digits in groups, such as "
                    "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47) nor a domain (such as contoso.onmicrosoft.com)."
                )
            )
        return value

    def clean(self):
        value = self.cleaned_data.get("tenant")
        if value is None:
            return self.cleaned_data
        try:
            self.tenant_id = microsoft.resolve_tenant(value)
        except MicrosoftError as error:
            if error.reason == "unknown_tenant":
                self.add_error("tenant", _("Microsoft does not know this tenant ID or domain. Check it and try again."))
            else:
                self.add_error("tenant", error.message)
            return self.cleaned_data
        if self.tenant_id == microsoft.PERSONAL_ACCOUNTS_TENANT:
            self.add_error("tenant", PERSONAL_ACCOUNTS_REFUSED)
            return self.cleaned_data
        existing = Integration.objects.filter(company=self.company, tenant_id=self.tenant_id).first()
        if existing is not None and existing.status not in Integration.WORKING:
            self.existing = existing  # added before, never approved (or refused): on to Microsoft again
            value = existing.display_name  # kept unless another name is typed
        elif existing is not None:
            self.add_error(
                "tenant",
                _("This tenant is already in your list (%(name)s, %(status)s).")
                % {"name": existing.display_name, "status": existing.status_label},
            )
        if not self.cleaned_data.get("display_name", "").strip():
            self.cleaned_data["display_name"] = value
        return self.cleaned_data


class LeaverPolicyForm(forms.Form):
    policy = forms.ChoiceField(
        label=_("When someone's Microsoft account is disabled or deleted"),
        choices=Integration.LeaverPolicy.choices,
        initial=Integration.LeaverPolicy.DEACTIVATE,
        widget=forms.RadioSelect,
        help_text=_(
            "Deactivating ends every session of the portal user and refuses their password and code too. "
            "Removing the connection only ends the sessions opened with Microsoft; the password still works."
        ),
    )
