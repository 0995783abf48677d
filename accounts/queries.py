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


def login_name(typed: str) -> str:
    """The username to sign in as for what was typed at login: itself, or the username of the
    one active account that has this email address (an address two accounts share signs in
    neither)."""
    if "@" not in typed or User.objects.filter(username=typed).exists():
        return typed
    owners = User.objects.filter(email__iexact=typed.strip(), is_active=True)
    usernames = list(owners.values_list("username", flat=True)[:2])
    return usernames[0] if len(usernames) == 1 else typed
