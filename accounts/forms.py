from __future__ import annotations

from django import forms
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordResetForm,
    SetPasswordForm,
    UserCreationForm,
)
from django.db import transaction

from . import actions, emails
from .models import ConversationView, User
from .queries import login_name


class SignupForm(UserCreationForm):
    display_name = forms.CharField(max_length=150, required=False, label="Your name")
    email = forms.EmailField(
        required=False, help_text="Optional. We send a link there to confirm it is yours."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "display_name", "email")


class LoginForm(AuthenticationForm):
    """Django's login form; the email address of an account signs in as that account too."""

    def clean(self) -> dict:
        if self.cleaned_data.get("username"):
            self.cleaned_data["username"] = login_name(self.cleaned_data["username"])
        return super().clean()


class PreferencesForm(forms.Form):
    conversation_view = forms.ChoiceField(choices=ConversationView.choices, required=False)
    enter_sends = forms.TypedChoiceField(
        choices=[("true", "Enter sends"), ("false", "Enter adds a line")],
        coerce=lambda value: value == "true",
        required=False,
    )


class AskForResetForm(PasswordResetForm):
    """Django's "which address?" form; each account found there gets its email from a Celery
    worker (accounts.emails), queued once the request's writes commit."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        user_id = context["user"].pk
        transaction.on_commit(lambda: emails.queue_password_reset(user_id))


class ResetPasswordForm(SetPasswordForm):
    """The new password from a reset link (Django's form), set as every new password is."""

    def save(self, commit: bool = True) -> User:
        actions.do_change_password(self.user, password=self.cleaned_data["new_password1"])
        return self.user


class ProfileForm(forms.ModelForm):
    """Your name and email. A new email address asks for your password (it is where password
    reset links go), and becomes yours from the link sent to it (accounts.email_change)."""

    password = forms.CharField(
        widget=forms.PasswordInput, required=False, strip=False, label="Password (to change email)"
    )

    class Meta:
        model = User
        fields = ("display_name", "email")
        labels = {"display_name": "Your name"}
        help_texts = {
            "display_name": "Shown on your messages. Empty: your username.",
            "email": "For notifications and password reset links. A new address is yours once "
            "you open the link we send to it.",
        }

    def clean_display_name(self) -> str:
        return " ".join(self.cleaned_data["display_name"].split())

    def clean(self) -> dict:
        data = super().clean()
        if "email" in self.changed_data and "email" in data:
            if not self.data.get("password"):
                self.add_error("password", "Type your password to change your email address.")
            elif not self.instance.check_password(self.data["password"]):
                self.add_error("password", "That is not your password.")
        return data
