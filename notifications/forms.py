from __future__ import annotations

from django import forms

from .actions import MAX_AWAY_MESSAGE
from .models import Frequency, Scope


class NotificationSettingsForm(forms.Form):
    frequency = forms.ChoiceField(
        choices=Frequency.choices, widget=forms.RadioSelect, label="Email me"
    )
    scope = forms.ChoiceField(choices=Scope.choices, widget=forms.RadioSelect, label="About")
    email_new_messages = forms.BooleanField(required=False, label="New messages")
    email_files_shared = forms.BooleanField(required=False, label="Files shared")
    email_added_to_room = forms.BooleanField(required=False, label="Being added to a room")
    email_report_reviewed = forms.BooleanField(
        required=False, label="A report you filed being reviewed"
    )
    desktop = forms.BooleanField(required=False, label="Desktop notifications")


class FlagForm(forms.Form):
    on = forms.TypedChoiceField(
        choices=[("1", "on"), ("0", "off")],
        coerce=lambda value: value == "1",
        error_messages={
            "required": "Say on (1) or off (0).",
            "invalid_choice": "Say on (1) or off (0).",
        },
    )


class OutOfOfficeForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Turn on the responder")
    message = forms.CharField(
        required=False,
        max_length=MAX_AWAY_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Away message",
    )
    start = forms.DateField(label="First day away", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="Last day away", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The last day away must be on or after the first day.")
        return data
