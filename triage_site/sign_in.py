"""The sign-in form: Django's, with the username's length actually validated.

Django sets the username field's max_length after the field is built, so no length validator
runs, and django-axes would try to store an over-long username (a database error on PostgreSQL).
"""
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class SignInForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length or 150))
