"""Celery tasks of accounts: thin shells that take ids."""

from __future__ import annotations

from celery import shared_task

from . import emails


# A mail server that is down or refuses for a while is tried again (SMTPException is an OSError).
@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=8)
def password_reset_email(user_id: int) -> bool:
    return emails.send_password_reset(user_id)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=8)
def email_confirmation(user_id: int, new_email: str) -> bool:
    return emails.send_email_confirmation(user_id, new_email)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=8)
def email_changed_notice(user_id: int, old_email: str) -> bool:
    return emails.send_email_changed_notice(user_id, old_email)
