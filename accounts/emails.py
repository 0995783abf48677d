"""Account emails, each built where it is sent (a Celery worker), so the request that asked for
it does not wait for the mail server: a password reset link (nor does the request take longer for
an address that has an account than for one that has none), the link confirming a new email
address, and the notice to the old address once it changed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from kombu.exceptions import OperationalError

from . import email_change
from .models import User

log = logging.getLogger(__name__)


def _queue(task, send: Callable[..., bool], what: str, *args) -> None:
    """Hand the email to a worker; with eager Celery (make run) or no broker, send it now."""
    if not task.app.conf.task_always_eager:
        try:
            task.delay(*args)
            return
        except OperationalError:
            log.warning("Celery's broker is unreachable; sending %s in the request", what)
    try:
        send(*args)
    except OSError:  # sent once here, so a refusal is only logged
        log.exception("Could not send %s (person %s)", what, args[0])


def queue_password_reset(user_id: int) -> None:
    from .tasks import password_reset_email

    _queue(password_reset_email, send_password_reset, "a password reset email", user_id)


def queue_email_confirmation(user_id: int, new_email: str) -> None:
    from .tasks import email_confirmation

    _queue(email_confirmation, send_email_confirmation, "an email confirmation", user_id, new_email)


def queue_email_changed_notice(user_id: int, old_email: str) -> None:
    from .tasks import email_changed_notice

    _queue(
        email_changed_notice,
        send_email_changed_notice,
        "an email change notice",
        user_id,
        old_email,
    )


def send_password_reset(user_id: int) -> bool:
    """Send the person a fresh reset link; False when they can no longer have one."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not user.has_usable_password():
        return False
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    _send("password_reset", user.email, {"user": user, "link": settings.PARLEY_BASE_URL + path})
    return True


def send_email_confirmation(user_id: int, new_email: str) -> bool:
    """Send the link that makes `new_email` the person's address, to that address."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.email == new_email:
        return False
    path = reverse("email_confirm", args=[email_change.make_token(user, new_email)])
    context = {
        "user": user,
        "new_email": new_email,
        "link": settings.PARLEY_BASE_URL + path,
        "timeout_days": settings.EMAIL_CHANGE_TIMEOUT // (24 * 60 * 60),
    }
    _send("email_confirm", new_email, context)
    return True


def send_email_changed_notice(user_id: int, old_email: str) -> bool:
    """Tell the address a person had that their email is now another: if someone else changed
    it, the old address is where they would notice."""
    user = User.objects.filter(pk=user_id).first()
    if user is None or not old_email or user.email == old_email:
        return False
    _send("email_changed", old_email, {"user": user, "new_email": user.email})
    return True


def _send(template: str, to: str, context: dict) -> None:
    subject = " ".join(render_to_string(f"email/{template}_subject.txt", context).split())
    body = render_to_string(f"email/{template}.txt", context)
    EmailMessage(subject, body, to=[to]).send()
