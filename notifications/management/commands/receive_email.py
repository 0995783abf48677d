"""Read one RFC 822 email from standard input and post it as a reply (an MTA pipe).

Postfix, for example: `parley unix - n n - - pipe user=parley argv=/srv/parley/.venv/bin/python
/srv/parley/manage.py receive_email --sender ${sender} --recipient ${recipient}`.
It exits 0 on refusals too, so that the MTA never bounces anything back to the sender, and
75 (EX_TEMPFAIL) when the database is down, so that the MTA tries again later.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from notifications.inbound import receive_email


class Command(BaseCommand):
    help = "Post a reply-by-email read from standard input (RFC 822)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sender", default=None, help="envelope sender; empty for <>")
        parser.add_argument("--recipient", action="append", default=[], help="envelope recipient")

    def handle(self, *args, sender: str | None, recipient: list[str], **options) -> None:
        from django.conf import settings

        # Read one byte past the limit: enough to know the mail is too large.
        raw = sys.stdin.buffer.read(settings.PARLEY_INBOUND_MAX_BYTES + 1)
        outcome = receive_email(raw, envelope_sender=sender, envelope_recipients=recipient)
        line = f"{'posted' if outcome.accepted else 'refused'}: {outcome.reason}"
        if outcome.message_id:
            line += f" (message {outcome.message_id})"
        self.stdout.write(line)
        if outcome.temporary:
            sys.exit(75)  # EX_TEMPFAIL: the MTA keeps the mail and tries again later
