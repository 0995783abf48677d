"""An SMTP (or LMTP) listener on loopback that posts replies-by-email as they arrive.

Every mail is accepted at the protocol level (250) once its size is within the limit, then
handed to `notifications.inbound.receive_email`, which refuses what it must without sending
anything back. Run it behind the MTA that receives mail for PARLEY_REPLY_DOMAIN.
"""

from __future__ import annotations

import signal
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from notifications.inbound import receive_email


class InboundHandler:
    async def handle_DATA(self, server, session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="replace")
        sender = envelope.mail_from
        outcome = await sync_to_async(_receive, thread_sensitive=False)(
            raw, "" if sender in (None, "", "<>") else sender, list(envelope.rcpt_tos)
        )
        # A refusal is final and silent (250); only a database outage asks the MTA to retry.
        return "451 Try again later" if outcome.temporary else "250 OK"


def _receive(raw: bytes, sender: str, recipients: list[str]):
    close_old_connections()
    try:
        return receive_email(raw, envelope_sender=sender, envelope_recipients=recipients)
    finally:
        close_old_connections()


class LMTPController(Controller):
    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)


class Command(BaseCommand):
    help = "Receive replies by email over SMTP or LMTP on a loopback port."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8025)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--lmtp", action="store_true", help="speak LMTP instead of SMTP")

    def handle(self, *args, port: int, host: str, lmtp: bool, **options) -> None:
        controller_class = LMTPController if lmtp else Controller
        controller = controller_class(
            InboundHandler(),
            hostname=host,
            port=port,
            data_size_limit=settings.PARLEY_INBOUND_MAX_BYTES,
            decode_data=False,
        )
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        controller.start()
        self.stdout.write(f"Receiving replies by {'LMTP' if lmtp else 'SMTP'} on {host}:{port}")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            controller.stop()
