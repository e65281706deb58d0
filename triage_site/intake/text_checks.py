"""Characters refused in anything a person types: shared by the forms and the services they call."""
from django.core.exceptions import ValidationError

# Embeddings, overrides and isolates reorder what follows them on screen: with U+202E, "4 ycnegru" reads
# "urgency 4". The marks (U+200E, U+200F, U+061C) only nudge neutral characters and are left for RTL text.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def reject_control_characters(value):
    bad = [ch for ch in value if ord(ch) < 32 and ch not in "\n\r\t"]
    if bad:
        raise ValidationError("Remove control characters (invisible characters such as NUL) from the text.")
    if BIDI_CONTROLS.intersection(value):
        raise ValidationError("Remove the invisible text-direction characters (such as right-to-left "
                              "override, U+202E) from the text: they change how it reads on screen.")
