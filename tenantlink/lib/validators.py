"""Validators shared by the apps' models and forms."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Unicode's explicit direction marks: embeddings, overrides and isolates. In a name they can make
# the text that follows read backwards ("Bob‮moc.elgoog" shows as "Bobgoogle.com"), in pages, page
# titles and the emails that carry the name.
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plain_text(value):
    """Refuse control characters (tabs, line breaks, escapes), Unicode's line and paragraph
    separators, and direction overrides in a name.
    Joiners and the left-to-right and right-to-left marks stay: scripts and emoji need them."""
    if any(
        unicodedata.category(character) in ("Cc", "Zl", "Zp") or character in DIRECTION_CONTROLS for character in value
    ):
        raise ValidationError(
            _("Use no control characters (such as line breaks) or characters that turn the direction of the text."),
            code="control_characters",
        )
