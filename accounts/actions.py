"""Every write to accounts and address books."""

from __future__ import annotations

from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction

from notifications.actions import do_expire_reply_tokens
from rooms.actions import publish_rename
from rooms.events import close_sockets_on_commit

from . import emails
from .models import Contact, User


@transaction.atomic
def do_create_user(
    *, username: str, password: str, email: str = "", display_name: str = ""
) -> User:
    return User.objects.create_user(
        username=username, password=password, email=email, display_name=display_name
    )


@transaction.atomic
def do_change_password(user: User, *, password: str, keep_session: str = "") -> None:
    """Set a new password (already validated). Every session of the person made with the old
    one ends (Django compares a session's password hash on each request) and its open tabs close
    now; `keep_session`, the session the change was made in, keeps its tabs."""
    user.set_password(password)
    user.save(update_fields=["password"])
    close_sockets_on_commit(user.pk, keep_session=keep_session)


@transaction.atomic
def do_update_profile(user: User, *, display_name: str) -> None:
    """The name messages show (already checked: ProfileForm): open pages show it at once, and
    every rendering from now on (the fragment cache keys on it)."""
    if display_name == user.display_name:
        return
    user.display_name = display_name
    user.save(update_fields=["display_name"])
    publish_rename(user)


@transaction.atomic
def do_change_email(user: User, *, email: str) -> None:
    """Make `email` (confirmed by its link: accounts.email_change) or no address at all the
    person's. Replies to the emails sent to the old address no longer post; that address is
    told once this commits."""
    old = user.email
    user.email = email
    user.save(update_fields=["email"])
    do_expire_reply_tokens(user)
    if old and old != email:
        transaction.on_commit(partial(emails.queue_email_changed_notice, user.pk, old))


@transaction.atomic
def do_add_contact(owner: User, *, person: User) -> Contact:
    if person.pk == owner.pk:
        raise ValidationError("You are always in your own address book.")
    if not person.is_active:
        raise ValidationError("No one found with that username or email.")
    contact, _ = Contact.objects.get_or_create(owner=owner, person=person)
    return contact


@transaction.atomic
def do_remove_contact(owner: User, *, person: User) -> None:
    Contact.objects.filter(owner=owner, person=person).delete()


PREFERENCES = ("conversation_view", "enter_sends")


@transaction.atomic
def do_set_preferences(user: User, **changes) -> None:
    unknown = set(changes) - set(PREFERENCES)
    if unknown:
        raise ValidationError(f"Unknown preference {sorted(unknown)[0]!r}.")
    for name, value in changes.items():
        setattr(user, name, value)
    user.save(update_fields=list(changes))
