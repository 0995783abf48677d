from __future__ import annotations

from django import forms
from django.contrib.auth.forms import SetPasswordForm, UserCreationForm

from . import actions
from .models import ConversationView, User


class SignupForm(UserCreationForm):
    display_name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "display_name", "email")


class PreferencesForm(forms.Form):
    conversation_view = forms.ChoiceField(choices=ConversationView.choices, required=False)
    enter_sends = forms.TypedChoiceField(
        choices=[("true", "Enter sends"), ("false", "Enter adds a line")],
        coerce=lambda value: value == "true",
        required=False,
    )


class ResetPasswordForm(SetPasswordForm):
    """The new password from a reset link (Django's form), set as every new password is."""

    def save(self, commit: bool = True) -> User:
        actions.do_change_password(self.user, password=self.cleaned_data["new_password1"])
        return self.user
