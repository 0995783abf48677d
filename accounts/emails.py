"""The password reset email: a link to choose a new password, built where it is sent (a Celery
worker), so the request that asked for it neither waits for the mail server nor takes longer for
an address that has an account than for one that has none."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from kombu.exceptions import OperationalError

from .models import User

log = logging.getLogger(__name__)


def queue_password_reset(user_id: int) -> None:
    """Hand the email to a worker; with eager Celery (make run) or no broker, send it now."""
    from .tasks import password_reset_email

    if not password_reset_email.app.conf.task_always_eager:
        try:
            password_reset_email.delay(user_id)
            return
        except OperationalError:
            log.warning("Celery's broker is unreachable; sending a reset email in the request")
    try:
        send_password_reset(user_id)
    except OSError:  # sent once here, so a refusal is only logged
        log.exception("Could not send a password reset email (person %s)", user_id)


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
    context = {"user": user, "link": settings.PARLEY_BASE_URL + path}
    subject = " ".join(render_to_string("email/password_reset_subject.txt", context).split())
    body = render_to_string("email/password_reset.txt", context)
    EmailMessage(subject, body, to=[user.email]).send()
    return True
