"""Validators shared by the apps' models and forms."""

import unicodedata
import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Unicode's explicit direction marks: embeddings, overrides and isolates. In a name they can make
# the text that follows read backwards ("Bob‮moc.elgoog" shows as "Bobgoogle.com"), in pages, page
# titles and the emails that carry the name.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# The invisible format characters (Unicode's category Cf) a name may hold: the zero-width
# non-joiner and joiner (Persian, Indic scripts, emoji sequences such as 👩‍💻) and the
# left-to-right and right-to-left marks (the punctuation of names that mix Hebrew or Arabic with
# Latin). Every other one (zero-width space, byte order mark, soft hyphen, word joiner…) shows as
# nothing: a name of them alone looks blank, and one inside a name makes a look-alike of another
# ("Ada\u200bAdmin").
ALLOWED_FORMAT_CHARACTERS = frozenset("\u200c\u200d\u200e\u200f")

# Letters and symbols that show as blank space: the Hangul fillers and the blank Braille pattern.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")

# What a decoder puts in place of bytes that were not valid UTF-8: Django reads a form sent in
# another encoding, or damaged on the way, into it without complaint.
REPLACEMENT_CHARACTER = "\ufffd"


def _visible(character):
    """A letter, digit, punctuation mark or symbol: not a space, a mark that needs a letter to sit
    on, a control or format character, nor one that draws as blank space."""
    return unicodedata.category(character)[0] in "LNPS" and character not in BLANK_LOOKING


def plain_text(value):
    """Refuse, in a name, control characters (tabs, line breaks, escapes), Unicode's line and
    paragraph separators, direction overrides, invisible format characters other than the joiners
    and the direction marks (scripts and emoji need them), characters that could not be read, and a
    name with nothing in it that can be seen."""
    # A byte that was not UTF-8 comes as U+FFFD from a form, and as a lone surrogate from a
    # command line (which the database could not even store).
    if REPLACEMENT_CHARACTER in value or any(unicodedata.category(character) == "Cs" for character in value):
        raise ValidationError(
            _("This contains characters that could not be read (shown as �). Type them again."),
            code="unreadable_characters",
        )
    if any(
        unicodedata.category(character) in ("Cc", "Zl", "Zp") or character in DIRECTION_CONTROLS for character in value
    ):
        raise ValidationError(
            _("Use no control characters (such as line breaks) or characters that turn the direction of the text."),
            code="control_characters",
        )
    if any(
        unicodedata.category(character) == "Cf" and character not in ALLOWED_FORMAT_CHARACTERS for character in value
    ):
        raise ValidationError(
            _("Use no invisible characters (such as zero-width spaces)."), code="invisible_characters"
        )
    if not any(_visible(character) for character in value):
        raise ValidationError(
            _("Enter at least one visible character: letters, digits or signs."), code="nothing_visible"
        )


def is_time_zone(name):
    """Whether the time-zone database knows `name`, also by an old name (Europe/Kiev)."""
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


def known_time_zone(value):
    """A stored time zone that the portal can use: one the time-zone database knows."""
    if not is_time_zone(value):
        raise ValidationError(
            _(
                "“%(value)s” is not a time zone. Enter one such as Europe/Stockholm, or nothing for the portal's default."
            ),
            code="unknown_time_zone",
            params={"value": value},
        )
