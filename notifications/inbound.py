"""Replies to notification emails, received as raw RFC 822 bytes from an MTA.

Both ways mail comes in — `manage.py receive_email` (an MTA pipe, message on stdin) and
`manage.py run_inbound_smtp` (an SMTP/LMTP listener on loopback) — call `receive_email`.
It finds the reply token in the recipient address (reply+<token>@PARLEY_REPLY_DOMAIN), refuses
anything automatic, oversized, malformed or not allowed, strips quoted history and signatures,
and posts the rest in the token's room as the token's owner. It never raises and never sends
mail back: a refusal is logged and returned.

Attached files become room attachments through the same upload actions as the browser; one
that is refused (too large, say) is named in the posted message instead. Not yet: a token owner
blocked by the room's other member is refused once blocking exists (issue 7).
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.http import Http404
from django.utils import timezone
from mailparser_reply import EmailReplyParser

from rooms.models import Membership

from .actions import do_attach_email_file, do_post_email_reply
from .models import InboundReply, ReplyToken

log = logging.getLogger(__name__)

# Languages whose reply headers ("On … wrote:", "Am … schrieb …") the reply parser knows.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv"]
AUTOREPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoreply-From")
AUTOMATIC_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}
# Files taken from one email; the rest are left out.
MAX_FILES = 10
BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster)@", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    reason: str
    message_id: int | None = None
    # The database was unreachable: the MTA should keep the mail and try again.
    temporary: bool = False


def refused(reason: str, **context: object) -> Outcome:
    log.info("Inbound email refused: %s %s", reason, context or "")
    return Outcome(False, reason)


def receive_email(
    raw: bytes, *, envelope_sender: str | None = None, envelope_recipients: Sequence[str] = ()
) -> Outcome:
    """Post a reply by email, or refuse it. `envelope_sender` "" means a null sender (<>)."""
    try:
        return _receive(raw, envelope_sender, envelope_recipients)
    except (OperationalError, InterfaceError):
        log.exception("Inbound email deferred: the database is unreachable")
        return Outcome(False, "database unavailable", temporary=True)
    except Exception:
        # Whatever the mail contains, the MTA pipe and the listener keep going.
        log.exception("Inbound email refused: could not be processed")
        return Outcome(False, "malformed")


def _receive(
    raw: bytes, envelope_sender: str | None, envelope_recipients: Sequence[str]
) -> Outcome:
    if len(raw) > settings.PARLEY_INBOUND_MAX_BYTES:
        return refused("too large", size=len(raw))
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    automatic = automatic_reason(mail, envelope_sender)
    if automatic:
        return refused(automatic)
    candidates = [*envelope_recipients, *_header_addresses(mail)]
    token = find_token(candidates)
    if token is None:
        return refused("unknown or expired token", to=candidates[:5])
    if not token.user.is_active:
        return refused("token owner is suspended", user=token.user_id)
    if not Membership.objects.filter(room_id=token.room_id, user_id=token.user_id).exists():
        return refused("token owner left the room", user=token.user_id, room=token.room_id)
    body = reply_text(mail)
    files = attached_files(mail)
    if not body and not files:
        return refused("empty reply", token=token.pk)
    email_message_id = str(mail.get("Message-ID", "") or "").strip()[:998]
    too_many = _over_limits(token, email_message_id)
    if too_many:
        return refused(too_many, token=token.pk)
    # Files are stored before the locked transaction, as the browser's uploads are; a mail
    # refused below leaves unsent uploads that the stale-upload purge removes.
    attachment_ids, not_attached = _store_files(token, files)
    if not_attached:
        body = "\n\n".join([body, "Not attached from the email: " + "; ".join(not_attached)])
    with transaction.atomic():
        # One reply at a time per token, so the rate limit and the duplicate check hold.
        token = (
            ReplyToken.objects.select_for_update().select_related("user", "room").get(pk=token.pk)
        )
        too_many = _over_limits(token, email_message_id)
        if too_many:
            return refused(too_many, token=token.pk)
        try:
            message = do_post_email_reply(
                token,
                body=body.strip(),
                email_message_id=email_message_id,
                attachments=attachment_ids,
            )
        except (ValidationError, PermissionDenied, Http404) as error:
            return refused("not allowed in the room", error=str(error))
    log.info("Inbound email posted as message %s", message.pk)
    return Outcome(True, "posted", message.pk)


def _over_limits(token: ReplyToken, email_message_id: str) -> str:
    replies = InboundReply.objects.filter(token=token)
    if email_message_id and replies.filter(email_message_id=email_message_id).exists():
        return "already posted"
    hour_ago = timezone.now() - timedelta(hours=1)
    if replies.filter(received__gte=hour_ago).count() >= settings.PARLEY_REPLIES_PER_TOKEN_PER_HOUR:
        return "too many replies"
    return ""


def attached_files(mail: EmailMessage) -> list[tuple[str, str, bytes]]:
    """(file name, declared type, bytes) of the files attached to `mail`, at most MAX_FILES.

    Inline images without a file name (signature logos, tracking pixels) are not files.
    """
    found = []
    for part in mail.iter_attachments():
        name = part.get_filename()
        if not name or part.get_content_maintype() == "multipart":
            continue
        data = part.get_payload(decode=True)
        if data:
            found.append((name, part.get_content_type(), data))
    return found[:MAX_FILES]


def _store_files(
    token: ReplyToken, files: list[tuple[str, str, bytes]]
) -> tuple[list[int], list[str]]:
    stored, refused_files = [], []
    for name, declared_type, data in files:
        try:
            attachment = do_attach_email_file(
                token.user, room=token.room, name=name, declared_type=declared_type, data=data
            )
        except (ValidationError, PermissionDenied, Http404) as error:
            reason = " ".join(getattr(error, "messages", [str(error)]))
            refused_files.append(f"{name} ({reason})")
            continue
        stored.append(attachment.pk)
    return stored, refused_files


def automatic_reason(mail: EmailMessage, envelope_sender: str | None) -> str:
    """Why `mail` looks machine-made (bounce, auto-reply, list), or "" for a person's mail."""
    auto_submitted = str(mail.get("Auto-Submitted", "") or "").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return "automatic (Auto-Submitted)"
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        return "bounce (null sender)"
    if str(mail.get("Return-Path", "") or "").strip() == "<>":
        return "bounce (null Return-Path)"
    if mail.get_content_type() == "multipart/report" or any(
        part.get_content_type() == "message/delivery-status" for part in mail.walk()
    ):
        return "bounce (delivery status report)"
    sender = str(mail.get("From", "") or "")
    if BOUNCE_SENDERS.search(email.utils.parseaddr(sender)[1]):
        return "bounce (mailer daemon)"
    if any(mail.get(name) is not None for name in AUTOREPLY_HEADERS):
        return "out-of-office reply"
    if str(mail.get("Precedence", "") or "").strip().lower() in AUTOMATIC_PRECEDENCE:
        return "automatic (Precedence)"
    return ""


def _header_addresses(mail: EmailMessage) -> list[str]:
    found = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        for value in mail.get_all(name) or []:
            found.extend(address for _, address in email.utils.getaddresses([str(value)]))
    return found


def find_token(addresses: Sequence[str]) -> ReplyToken | None:
    """The valid token in the first reply address among `addresses`, or None."""
    domain = settings.PARLEY_REPLY_DOMAIN.lower()
    pattern = re.compile(rf"^<?reply\+([0-9a-f]{{32}})@{re.escape(domain)}>?$", re.IGNORECASE)
    for address in addresses:
        match = pattern.match(address.strip())
        if match:
            return (
                ReplyToken.objects.select_related("user", "room")
                .filter(token=match.group(1).lower(), expires__gt=timezone.now())
                .first()
            )
    return None


def reply_text(mail: EmailMessage) -> str:
    """The new text of a reply: plain text (or HTML made text), without history or signature."""
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _decoded(part)
    if part.get_content_type() == "text/html":
        text = html_to_text(text)
    return strip_quoted(text)


def _decoded(part: EmailMessage) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):
        # An unknown or lying charset: keep what decodes instead of refusing a person's reply.
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def strip_quoted(text: str) -> str:
    """Drop quoted history ("On … wrote:" and what follows) and signatures."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return ""
    replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text).replies
    if not replies:
        return text
    if replies[0].headers:
        return ""  # the mail starts with its quoted history: nothing new was written
    return replies[0].body.strip()


class _HtmlText(HTMLParser):
    """HTML mail to plain text: block elements break lines, quoted history is left out."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr"}
    SKIPPED = {"script", "style", "head", "title", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag in self.SKIPPED or self.skipping or "gmail_quote" in classes:
            # Void tags never close, so only count the ones that do.
            if tag not in {"br", "hr", "img", "meta", "link", "input"}:
                self.skipping += 1
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag in self.BLOCKS:
            self._end_line()
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        if tag == "p":
            self._end_line(blank=True)
        elif tag in self.BLOCKS:
            self._end_line()

    def _end_line(self, *, blank: bool = False) -> None:
        text = "".join(self.parts[-2:])
        if text and not text.endswith("\n"):
            self.parts.append("\n")
        if blank and not "".join(self.parts[-2:]).endswith("\n\n"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
