"""The intake form: what a call-taker types."""
from django import forms

from .models import Urgency

MAX_TEXT_LENGTH = 4000


# Embeddings, overrides and isolates reorder what follows them on screen: with U+202E, "4 ycnegru" reads
# "urgency 4". The marks (U+200E, U+200F, U+061C) only nudge neutral characters and are left for RTL text.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def reject_control_characters(value):
    bad = [ch for ch in value if ord(ch) < 32 and ch not in "\n\r\t"]
    if bad:
        raise forms.ValidationError("Remove control characters (invisible characters such as NUL) from the text.")
    if BIDI_CONTROLS.intersection(value):
        raise forms.ValidationError("Remove the invisible text-direction characters (such as right-to-left "
                                    "override, U+202E) from the text: they change how it reads on screen.")


class MedicalRequestForm(forms.Form):
    text = forms.CharField(
        label="What is happening?",
        max_length=MAX_TEXT_LENGTH,
        min_length=1,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "autofocus": True, "maxlength": MAX_TEXT_LENGTH}),
        error_messages={
            "required": "Describe the medical situation (1 to 4,000 characters).",
            "max_length": "The description is too long: at most 4,000 characters (it has %(show_value)d).",
        },
        validators=[reject_control_characters],
    )
    caller_name = forms.CharField(label="Caller name", max_length=200, required=False,
                                  validators=[reject_control_characters])
    callback_number = forms.RegexField(
        label="Callback number", max_length=40, required=False, strip=True, regex=r"^[0-9+()\-. ]{3,40}$",
        error_messages={"invalid": "Enter a phone number: digits, spaces and + ( ) - . only."},
    )
    location = forms.CharField(label="Location", max_length=300, required=False,
                               validators=[reject_control_characters])


class UrgencyOverrideForm(forms.Form):
    new_urgency = forms.TypedChoiceField(label="New urgency", coerce=int, choices=Urgency.choices)
    reason = forms.CharField(label="Reason (kept in the audit log)", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": "Give a reason for the change; it is kept in the audit log."},
                             validators=[reject_control_characters])


class BulkRaiseForm(UrgencyOverrideForm):
    phrase = forms.CharField(label="Requests whose text or location mentions", min_length=3, max_length=200,
                             error_messages={"min_length": "Give at least 3 characters to match."},
                             validators=[reject_control_characters])
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field_order = ["phrase", "new_urgency", "reason"]
