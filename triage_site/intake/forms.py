"""The intake form: what a call-taker types."""
from django import forms

from . import overrides
from .models import Urgency
from .text_checks import reject_control_characters

MAX_TEXT_LENGTH = 4000


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
    # Not required here: the one rule for a reason (required, length, characters) is overrides.clean_reason, which
    # the websocket's change_urgency goes through too.
    reason = forms.CharField(label="Reason (kept in the audit log)", required=False, widget=forms.Textarea(
        attrs={"rows": 2, "required": True, "maxlength": overrides.REASON_MAX_LENGTH}))

    def clean_reason(self):
        return overrides.clean_reason(self.cleaned_data["reason"])


class BulkRaiseForm(UrgencyOverrideForm):
    phrase = forms.CharField(label="Requests whose text or location mentions", min_length=3, max_length=200,
                             error_messages={"min_length": "Give at least 3 characters to match."},
                             validators=[reject_control_characters])
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field_order = ["phrase", "new_urgency", "reason"]
