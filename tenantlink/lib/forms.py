"""How forms are drawn: with Django's own templates, except the single <input> of a text, password,
hidden or similar field, and a <select> with its options. Django draws each such input through
three templates (the widget's, which includes input.html, which includes attrs.html), about a
millisecond apiece here: half the CPU of the sign-in page and of the code page; and each option of
a select through two more (the time zone's 500 options took 50 ms of the settings page). This
writes the same HTML directly; a test compares it with Django's templates, value by value and
attribute by attribute, escaping included.

Each field is a BoundField of this module: after a form comes back with errors, the focus starts
on the first field to correct (the pages work without script)."""

from django import forms
from django.forms.renderers import DjangoTemplates
from django.template import Context
from django.template.base import render_value_in_context
from django.utils.html import escape
from django.utils.safestring import SafeData

# Django's widget templates that are nothing but {% include "django/forms/widgets/input.html" %}.
# (file.html too, but a file input never shows a value; it is left to the templates.)
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "input",
        "text",
        "password",
        "hidden",
        "email",
        "number",
        "url",
        "tel",
        "search",
        "date",
        "datetime",
        "time",
        "color",
        "checkbox",
    )
)


def _formatted(value):
    """A value as {{ value|stringformat:'s' }} shows it: escaped unless it was marked safe."""
    if isinstance(value, tuple):
        value = str(value)
    try:
        text = "%s" % value  # noqa: UP031 (exactly the filter's own formatting)
    except (ValueError, TypeError):
        return ""
    return text if isinstance(value, SafeData) else escape(text)


SELECT_TEMPLATE = "django/forms/widgets/select.html"
OPTION_TEMPLATE = "django/forms/widgets/select_option.html"
_AUTOESCAPE = Context(autoescape=True)


def _shown(value):
    """A value as {{ value }} shows it: localized, then escaped unless it was marked safe."""
    return render_value_in_context(value, _AUTOESCAPE)


def _attrs(attrs):
    """django/forms/widgets/attrs.html."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        parts.append(f" {_shown(name)}")
        if value is not True:
            parts.append(f'="{_formatted(value)}"')
    return "".join(parts)


def input_html(widget):
    """django/forms/widgets/input.html with attrs.html, for the widget's template context."""
    value = "" if widget["value"] is None else f' value="{_formatted(widget["value"])}"'
    return f'<input type="{_shown(widget["type"])}" name="{_shown(widget["name"])}"{value}{_attrs(widget["attrs"])}>'


def select_html(widget):
    """django/forms/widgets/select.html with select_option.html and attrs.html."""
    parts = [f'<select name="{_shown(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_shown(group_name)}">')
        for option in options:
            parts.append(
                f'\n  <option value="{_formatted(option["value"])}"{_attrs(option["attrs"])}>'
                f"{_shown(option['label'])}</option>\n"  # the included file's last line ends
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _plain_options(widget):
    return all(
        option["template_name"] == OPTION_TEMPLATE for _, options, _ in widget["optgroups"] for option in options
    )


def first_invalid_field(form):
    """The name of the first field, in the form's order, that shows an error; None without one."""
    errors = form.errors if form.is_bound else {}
    return next((name for name, field in form.fields.items() if name in errors and not field.widget.is_hidden), None)


class BoundField(forms.BoundField):
    """Django's BoundField, with autofocus on the first field with an error once there is one, and
    on no other field: a keyboard or screen reader user starts where the mistake is, not on the
    form's first field (the old password, when the new one was refused). A field of several
    inputs (radio buttons) gives it to each; the browser focuses the first."""

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        first_invalid = first_invalid_field(self.form)
        if first_invalid is not None:
            attrs["autofocus"] = self.name == first_invalid  # False is left out of the HTML
        return attrs

    @property
    def error_link_id(self):
        """The id that the form's error summary links to: the field's input, or its first one."""
        if self.id_for_label:
            return self.id_for_label
        first = next(iter(self.subwidgets), None)  # the first of a group of radio buttons
        return first.id_for_label if first is not None and first.id_for_label else self.auto_id


class Renderer(DjangoTemplates):
    """Django's default form renderer (FORM_RENDERER), with inputs drawn by input_html() and
    selects by select_html(), and fields that are BoundFields of this module."""

    bound_field_class = BoundField

    def render(self, template_name, context, request=None):
        widget = context.get("widget", {})
        if template_name in INPUT_TEMPLATES and "type" in widget:
            return input_html(widget)
        if template_name == SELECT_TEMPLATE and "optgroups" in widget and _plain_options(widget):
            return select_html(widget)
        return super().render(template_name, context, request)
