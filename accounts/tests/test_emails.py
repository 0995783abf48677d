"""How account emails leave: through a Celery worker, or in the request when the broker is away."""

from __future__ import annotations

from celery import Celery

from accounts import emails
from tests.live import free_port


def unreachable(send):
    """`send` as a task of a real Celery app whose broker is a closed port: publishing it fails
    as it would in an outage."""
    app = Celery("unreachable", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    return app.task(name=f"unreachable.{send.__name__}")(send)


def test_with_the_broker_unreachable_the_email_is_sent_in_the_request(alice, smtp, caplog):
    send = emails.send_email_confirmation
    emails._queue(unreachable(send), send, "an email confirmation", alice.pk, "new@example.com")
    assert "Celery's broker is unreachable; sending an email confirmation" in caplog.text
    assert smtp.wait_for(1, timeout=5)
    (mail,) = smtp.parsed()
    assert mail["To"] == "new@example.com"
    assert "/accounts/profile/email/" in mail.get_content()


def test_with_the_mail_server_away_too_the_refusal_is_logged(alice, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    alice.email = "alice@example.com"
    alice.save()
    send = emails.send_password_reset
    emails._queue(unreachable(send), send, "a reset", alice.pk)
    assert f"Could not send a reset (person {alice.pk})" in caplog.text
