"""How forms are drawn: with Django's own templates, except the single <input> of a text, password,
hidden or similar field. Django draws each such input through three templates (the widget's, which
includes input.html, which includes attrs.html), about a millisecond apiece here: half the CPU of
the sign-in page and of the code page. This writes the same HTML directly; a test compares it with
Django's templates, value by value and attribute by attribute, escaping included."""

from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape, escape
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


def input_html(widget):
    """django/forms/widgets/input.html with attrs.html, for the widget's template context."""
    parts = [f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"']
    if widget["value"] is not None:
        parts.append(f' value="{_formatted(widget["value"])}"')
    for name, value in widget["attrs"].items():
        if value is False:
            continue
        parts.append(f" {conditional_escape(name)}")
        if value is not True:
            parts.append(f'="{_formatted(value)}"')
    parts.append(">")
    return "".join(parts)


class Renderer(DjangoTemplates):
    """Django's default form renderer (FORM_RENDERER), with inputs drawn by input_html()."""

    def render(self, template_name, context, request=None):
        if template_name in INPUT_TEMPLATES and "type" in context.get("widget", {}):
            return input_html(context["widget"])
        return super().render(template_name, context, request)
