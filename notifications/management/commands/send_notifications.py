"""Send every notification email that is due, once or every N seconds.

Celery beat does this in production; the embedded run (no worker, no beat) can use
`manage.py send_notifications --every 30` beside the server.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from notifications.actions import send_all_due_emails


class Command(BaseCommand):
    help = "Send due notification emails and digests (safe to run alongside Celery beat)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=0, help="repeat every N seconds")

    def handle(self, *args, every: float, **options) -> None:
        while True:
            report = send_all_due_emails()
            self.stdout.write(f"sent {report.sent}, skipped {report.skipped}")
            if not every:
                return
            time.sleep(every)
