from __future__ import annotations

from django import forms

from .actions import MAX_DESCRIPTION
from .models import Reason


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Reason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick one of the reasons."},
    )
    description = forms.CharField(
        required=False, max_length=MAX_DESCRIPTION, widget=forms.Textarea(attrs={"rows": 3})
    )
