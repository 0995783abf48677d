"""A new email address takes effect from a link sent to it: whoever types an address must show
that they read its mail before notifications, message contents and password reset links go there.

The link's token is signed and names the person, the address asked for, and the address they
have now as a keyed digest (the link goes to the new address, whose reader need not learn the
old one). It works until it is EMAIL_CHANGE_TIMEOUT old, and once: after the change the person's
address is no longer the one it names.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.crypto import salted_hmac

from .models import User

SALT = "accounts.email-change"


def make_token(user: User, new_email: str) -> str:
    return signing.dumps({"user": user.pk, "from": _digest(user.email), "to": new_email}, salt=SALT)


def _digest(email: str) -> str:
    return salted_hmac(SALT, email).hexdigest()[:32]


def address_asked(token: str, user: User) -> str:
    """The address `user` asked for with the link's token; ValidationError when it does not work."""
    days = settings.EMAIL_CHANGE_TIMEOUT // (24 * 60 * 60)
    try:
        asked = signing.loads(token, salt=SALT, max_age=settings.EMAIL_CHANGE_TIMEOUT)
    except signing.BadSignature:  # SignatureExpired too
        raise ValidationError(
            f"This link does not work: it is incomplete, or more than {days} days old."
        ) from None
    if asked["user"] != user.pk:
        raise ValidationError("This link is for another account: sign in as its person first.")
    if asked["from"] != _digest(user.email):
        raise ValidationError(
            "This link no longer works: your email address has changed since it was sent."
        )
    return asked["to"]
