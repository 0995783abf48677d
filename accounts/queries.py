from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q

from .models import User


def find_person(text: str) -> User:
    """The active person with this username or email (case-insensitive)."""
    text = text.strip()
    person = (
        User.objects.filter(Q(username__iexact=text) | Q(email__iexact=text), is_active=True)
        .order_by("pk")
        .first()
        if text
        else None
    )
    if person is None:
        raise ValidationError(f"No one has the username or email {text!r}.")
    return person
