"""The intake form: what a call-taker types."""
from django import forms

MAX_TEXT_LENGTH = 4000


def reject_control_characters(value):
    bad = [ch for ch in value if ord(ch) < 32 and ch not in "\n\r\t"]
    if bad:
        raise forms.ValidationError("Remove control characters (invisible characters such as NUL) from the text.")


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
        label="Callback number", max_length=40, required=False, regex=r"^[0-9+()\-. ]{3,40}$",
        error_messages={"invalid": "Enter a phone number: digits, spaces and + ( ) - . only."},
    )
    location = forms.CharField(label="Location", max_length=300, required=False,
                               validators=[reject_control_characters])
