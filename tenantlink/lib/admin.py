"""The operator admin's inputs that Django draws without a label of their own, named for screen
readers: the date and the time of a date-time field (one <label> names the pair, and points at
the date only), and every input in a row of an inline table (named by its column's heading
alone, which a screen reader does not read out for an input), the row's Delete box included."""

from django import forms
from django.contrib import admin
from django.utils.text import capfirst
from django.utils.translation import gettext as _


def _name(widget, name):
    widget = getattr(widget, "widget", widget)  # a foreign key's select inside its add/change links
    if isinstance(widget, forms.SplitDateTimeWidget):
        date, time = widget.widgets
        date.attrs["aria-label"] = _("%(field)s: date") % {"field": name}
        time.attrs["aria-label"] = _("%(field)s: time") % {"field": name}
    return widget


class LabelledInputs:
    """For a ModelAdmin: the date and the time of each date-time field named."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None:
            _name(field.widget, capfirst(db_field.verbose_name))
        return field


class LabelledTabularInline(admin.TabularInline):
    """Every input of a row named by its field, as its column's heading names it."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None:
            name = capfirst(db_field.verbose_name)
            widget = _name(field.widget, name)
            if not isinstance(widget, forms.SplitDateTimeWidget):
                widget.attrs["aria-label"] = name
        return field

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class Labelled(formset):
            def add_fields(self, form, index):
                super().add_fields(form, index)
                if "DELETE" in form.fields:
                    form.fields["DELETE"].widget.attrs["aria-label"] = _("Delete")

        return Labelled
