import datetime

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models.functions import Lower
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
# The browser shows a date field in its own language's way, but its value is always ISO 8601,
# whatever the page's language would write (5.3.2026 in Finnish).
DATE_PICKER = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class PersonChoiceField(forms.ModelChoiceField):
    """A person by name and username: names repeat (two Aino Karlssons), usernames tell little."""

    def label_from_instance(self, obj):
        name = obj.get_full_name()
        return f"{name} ({obj.username})" if name != obj.username else name


class AuditFilterForm(forms.Form):
    user = PersonChoiceField(label=_("User"), queryset=User.objects.none(), required=False, empty_label=_("Anyone"))
    action = forms.ChoiceField(label=_("Action"), required=False)
    since = forms.DateField(label=_("From"), required=False, validators=DATE_RANGE, widget=DATE_PICKER)
    until = forms.DateField(label=_("To"), required=False, validators=DATE_RANGE, widget=DATE_PICKER)

    def __init__(self, company, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.of_company(company).order_by(Lower("display_name"), "username")
        self.fields["action"].choices = [("", _("Any action")), *Action.choices]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date must be on or after the start date."))
        return data
