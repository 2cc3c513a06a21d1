import datetime

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action

# A day is turned into a range of times (and the end date into the next midnight), which does not
# exist for the first and last days Python knows: keep the dates well inside.
EARLIEST = datetime.date(1900, 1, 1)
LATEST = datetime.date(9998, 12, 31)
DATE_RANGE = [
    MinValueValidator(EARLIEST, _("Enter a date from %(limit_value)s on.")),
    MaxValueValidator(LATEST, _("Enter a date up to %(limit_value)s.")),
]


class AuditFilterForm(forms.Form):
    user = forms.ModelChoiceField(
        label=_("User"), queryset=User.objects.none(), required=False, empty_label=_("Anyone")
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    since = forms.DateField(
        label=_("From"), required=False, validators=DATE_RANGE, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, validators=DATE_RANGE, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, company, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.filter(company=company)
        self.fields["action"].choices = [("", _("Any action")), *Action.choices]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date must be on or after the start date."))
        return data
