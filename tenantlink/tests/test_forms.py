"""The portal's form renderer writes the same inputs as Django's templates."""

from pathlib import Path

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from tenantlink.lib.forms import INPUT_TEMPLATES, OPTION_TEMPLATE, SELECT_TEMPLATE, Renderer

WIDGETS = [
    forms.TextInput,
    forms.PasswordInput,
    forms.HiddenInput,
    forms.EmailInput,
    forms.NumberInput,
    forms.URLInput,
    forms.SearchInput,
    forms.TelInput,
    forms.DateInput,
    forms.TimeInput,
    forms.ColorInput,
    forms.CheckboxInput,
]
VALUES = [None, "", "ada", "a\"b<c>&d'e", mark_safe("<b>safe</b>"), 0, 42, 3.5, ("x", 1), "åäö – ✓"]
ATTRS = [
    {},
    {"autofocus": True, "autocomplete": "one-time-code", "class": "code"},
    {"disabled": False, "required": True, "data-x": '"><script>alert(1)</script>'},
    {"maxlength": 4096, "aria-describedby": "id_username_helptext id_username_error", "id": "id_x"},
    {'on"click': "x", "title": mark_safe("<i>ok</i>")},
    {"min": 0, "step": None, "placeholder": gettext_lazy("Username"), "pattern": "[0-9]{6}"},
]


@pytest.mark.parametrize("widget_class", WIDGETS, ids=lambda widget_class: widget_class.__name__)
def test_an_input_is_written_as_djangos_templates_write_it(widget_class):
    for attrs in ATTRS:
        widget = widget_class(attrs=attrs)
        if isinstance(widget, forms.PasswordInput):
            widget.render_value = True
        for value in VALUES:
            ours = widget.render("field", value, renderer=Renderer())
            assert ours == widget.render("field", value, renderer=DjangoTemplates()), (attrs, value)
            assert ours.startswith("<input ")


CHOICES = [
    [],
    [("", "---------"), ("a", "Ada"), ("b", '<B> & "b"'), (3, 3), (4.5, gettext_lazy("Username"))],
    [("Europe", [("Europe/Helsinki", "Helsinki"), ("Europe/Stockholm", "Stockholm")]), ("UTC", "UTC")],
    [(mark_safe("<i>x</i>"), mark_safe("<b>safe</b>")), (("t", 1), "tuple"), (None, "none"), (True, "yes")],
    [("åäö", "åäö – ✓"), ('"><script>', '"><script>alert(1)</script>'), (1000, 1000), (0.25, 2.5)],
]


@pytest.mark.parametrize(
    "widget_class", [forms.Select, forms.SelectMultiple], ids=lambda widget_class: widget_class.__name__
)
def test_a_select_is_written_as_djangos_templates_write_it(widget_class, settings):
    settings.USE_THOUSAND_SEPARATOR = True  # labels are localized, as {{ }} does
    for choices in CHOICES:
        for attrs in ATTRS:
            widget = widget_class(attrs=attrs, choices=choices)
            for value in [None, "", "a", "Europe/Stockholm", 3, ["a", "b"], "<B>", "åäö", 1000]:
                if widget_class is forms.Select and isinstance(value, list):
                    continue
                ours = widget.render("field", value, renderer=Renderer())
                assert ours == widget.render("field", value, renderer=DjangoTemplates()), (choices, attrs, value)
                assert ours.startswith("<select ")
    yes_no = forms.NullBooleanSelect()
    for value in [None, True, False, "unknown"]:
        assert yes_no.render("x", value, renderer=Renderer()) == yes_no.render("x", value, renderer=DjangoTemplates())


def test_every_input_written_directly_is_one_of_djangos_own_templates():
    # An app that overrides one of them would be ignored: it must not happen unnoticed.
    django_widgets = Path(forms.__file__).parent / "templates" / "django" / "forms" / "widgets"
    for name in [*INPUT_TEMPLATES, SELECT_TEMPLATE, OPTION_TEMPLATE]:
        template = Renderer().get_template(name)
        assert Path(template.origin.name) == django_widgets / Path(name).name, name


def test_other_widgets_still_use_the_templates():
    widget = forms.RadioSelect(choices=[("a", "<A>"), ("b", "B")])
    assert widget.render("choice", "a", renderer=Renderer()) == widget.render("choice", "a", renderer=DjangoTemplates())
    # A select whose options have a template of their own, too.
    select = forms.Select(choices=[("a", "A")])
    select.option_template_name = "django/forms/widgets/radio_option.html"
    assert select.render("x", "a", renderer=Renderer()) == select.render("x", "a", renderer=DjangoTemplates())
    assert "<label><input " in select.render("x", "a", renderer=Renderer())  # its own option template


@pytest.mark.django_db
def test_the_settings_page_draws_its_selects_as_djangos_templates_do(member_client, member):
    from tenantlink.accounts.forms import PreferencesForm

    page = member_client.get("/profile/settings/").content.decode()
    form = PreferencesForm(instance=member, renderer=DjangoTemplates())
    for name in ("language", "time_zone"):
        assert str(form[name]) in page
    assert '<option value="Europe/Helsinki">Europe/Helsinki</option>' in page


@pytest.mark.django_db
def test_the_sign_in_page_shows_a_refused_username_escaped(client):
    page = client.post("/signin/", {"username": 'ada"><script>alert(1)</script>', "password": "wrong"})
    html = page.content.decode()
    assert '<input type="text" name="username" value="ada&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "<script>alert(1)" not in html
    assert 'autocomplete="current-password"' in html and 'type="password" name="password"' in html
