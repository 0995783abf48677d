from __future__ import annotations

import pytest

from notifications.tests.live import SmtpSink


@pytest.fixture
def smtp(settings, eager_celery):
    """A real SMTP server on loopback receiving what the (eager) account emails send."""
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        yield sink
