"""The Swedish and Finnish catalogues: complete, up to date with the source, placeholders kept,
and the compiled .mo files (committed, so no machine needs GNU gettext to run the portal) the
same as their .po files. `make messages` fixes the last two."""

import ast
import collections
import io
import re
import tokenize
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils.translation.template import templatize

PORTAL = Path(settings.BASE_DIR) / "tenantlink"
TRANSLATED = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]
# The keywords `manage.py makemessages` extracts, and which arguments are (context, singular, plural).
KEYWORDS = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}
NAMED = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
POSITIONAL = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
BRACES = re.compile(r"(?<!\{)\{(\w*)[^{}]*\}(?!\})")


def catalogue(language):
    return polib.pofile(str(PORTAL / "locale" / language / "LC_MESSAGES" / "django.po"))


def _message(args, positions):
    context, singular, plural = positions
    if any(position is not None and position >= len(args) for position in positions):
        return None
    if not all(isinstance(args[p], str) for p in (context, singular, plural) if p is not None):
        return None
    return (args[context] if context is not None else "", args[singular], args[plural] if plural is not None else "")


def python_messages(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in KEYWORDS:
                args = [arg.value if isinstance(arg, ast.Constant) else None for arg in node.args]
                if (message := _message(args, KEYWORDS[name])) is not None:
                    yield message


def template_messages(source):
    """Django turns a template into gettext() calls amid placeholder text, as makemessages does."""
    code = "\n".join(line.strip() for line in templatize(source).splitlines())  # no indentation to track
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    for index, token in enumerate(tokens):
        if token.type == tokenize.NAME and token.string in KEYWORDS and tokens[index + 1].string == "(":
            args, position = [], index + 2
            while tokens[position].type == tokenize.STRING:
                args.append(ast.literal_eval(tokens[position].string))
                position += 1 if tokens[position + 1].string != "," else 2
            if (message := _message(args, KEYWORDS[token.string])) is not None:
                yield message


def source_messages():
    messages = set()
    for path in PORTAL.rglob("*"):
        if "tests" in path.relative_to(PORTAL).parts or path.suffix not in (".py", ".html", ".txt"):
            continue
        extract = python_messages if path.suffix == ".py" else template_messages
        messages.update(extract(path.read_text()))
    return messages


def placeholders(text, flags):
    found = collections.Counter(NAMED.findall(text))
    if "python-format" in flags:
        found.update(POSITIONAL.findall(NAMED.sub("", text.replace("%%", ""))))
    if "python-brace-format" in flags:
        found.update("{" + name + "}" for name in BRACES.findall(text))
    return found


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language):
    po = catalogue(language)
    untranslated = [entry.msgid for entry in po.untranslated_entries()]
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]
    assert not untranslated, f"{language}: not translated: {untranslated}"
    assert not fuzzy, f"{language}: fuzzy, to be checked: {fuzzy}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalogue_holds_exactly_the_messages_of_the_source(language):
    in_catalogue = {(entry.msgctxt or "", entry.msgid, entry.msgid_plural) for entry in catalogue(language)}
    in_source = source_messages()
    assert not in_source - in_catalogue, f"{language}: not in the catalogue (make messages): {in_source - in_catalogue}"
    assert not in_catalogue - in_source, (
        f"{language}: no longer in the source (make messages): {in_catalogue - in_source}"
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder(language):
    wrong = []
    for entry in catalogue(language).translated_entries():
        if entry.msgid_plural:
            pairs = [(entry.msgid if n == 0 else entry.msgid_plural, text) for n, text in entry.msgstr_plural.items()]
        else:
            pairs = [(entry.msgid, entry.msgstr)]
        for original, translation in pairs:
            if placeholders(original, entry.flags) != placeholders(translation, entry.flags):
                wrong.append((original, translation))
    assert not wrong, f"{language}: placeholders dropped or changed: {wrong}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_matches_its_source(language):
    po = catalogue(language)
    mo = polib.mofile(str(PORTAL / "locale" / language / "LC_MESSAGES" / "django.mo"))

    def texts(entries):
        return {
            (entry.msgctxt, entry.msgid): entry.msgstr or tuple(sorted(entry.msgstr_plural.items()))
            for entry in entries
            if entry.msgid
        }

    assert texts(mo) == texts(po.translated_entries()), f"{language}: django.mo is out of date (make messages)"


def test_the_placeholder_check_catches_a_dropped_or_renamed_placeholder():
    flags = ["python-format"]
    assert placeholders("Delete %(name)s?", flags) != placeholders("Ta bort?", flags)
    assert placeholders("Delete %(name)s?", flags) != placeholders("Ta bort %(namn)s?", flags)
    assert placeholders("%d users", flags) != placeholders("%s användare", flags)
    assert placeholders("{count} users", ["python-brace-format"]) != placeholders("{antal} användare", [])
    assert placeholders("100%% sure, %(name)s", flags) == placeholders("%(name)s: 100%% säker", flags)


def test_the_extraction_finds_messages_of_python_and_templates():
    assert ("", "Sign in", "") in set(template_messages('{% load i18n %}<h1>{% translate "Sign in" %}</h1>'))
    counted = (
        "{% blocktranslate count counter=n %}{{ counter }} user{% plural %}{{ counter }} users{% endblocktranslate %}"
    )
    assert ("", "%(counter)s user", "%(counter)s users") in set(template_messages("{% load i18n %}" + counted))
    assert set(python_messages('_("a"); ngettext("b", "c", n); pgettext("menu", "d"); print("e")')) == {
        ("", "a", ""),
        ("", "b", "c"),
        ("menu", "d", ""),
    }
