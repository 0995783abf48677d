"""Sending a message over the tab's websocket (LiveConsumer): the composer's usual way, which
skips a request's HTTP parsing, middleware and session lookup. The composer posts to
/rooms/<id>/messages instead while its socket is closed, and again with the same client token
when the socket does not answer: the token makes a message stored once whichever way arrived.

Client to server:
    {"type": "message.send", "room": 7, "body": "Hi", "attachments": [12], "client_token": "…"}
Server to this socket, before the room's own frame for the message:
    {"type": "message.sent", "client_token": "…", "id": 41, "html": "<article …>"}
    {"type": "message.refused", "client_token": "…", "status": 400, "error": "…"}
The status is the one the HTTP endpoint would give (400, 401, 403, 404, 429).
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from messages_site.middleware import SignedOutScriptMiddleware
from moderation import ratelimit

from . import actions
from .forms import MAX_ATTACHMENT_IDS, MAX_ID
from .fragments import message_html


class Refused(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def parse_send(frame: dict) -> tuple[int, str, list[int]]:
    """The room, text and attachments of a message.send frame, or Refused (400)."""
    room_id, body = frame.get("room"), frame.get("body", "")
    attachments = frame.get("attachments", [])
    if not _is_id(room_id):
        raise Refused(400, "message.send needs room, a room id.")
    if not isinstance(body, str):
        raise Refused(400, "A message's body is text.")
    if (
        not isinstance(attachments, list)
        or len(attachments) > MAX_ATTACHMENT_IDS
        or not all(_is_id(pk) for pk in attachments)
    ):
        raise Refused(400, "Those are not files that can be sent.")
    return room_id, body, attachments


def _refusal(error: Exception) -> Refused:
    if isinstance(error, actions.SignedOut):
        return Refused(401, SignedOutScriptMiddleware.SIGNED_OUT)
    if isinstance(error, Http404):
        return Refused(404, "No such room.")
    if isinstance(error, ValidationError):
        return Refused(400, " ".join(error.messages))
    if isinstance(error, ratelimit.RateLimited):
        return Refused(429, str(error))
    return Refused(403, str(error) or "You may not do that.")


class MessageFrames:
    """Mixed into LiveConsumer: `message_send` takes a message.send frame and answers it."""

    async def message_send(self, frame: dict) -> None:
        token = frame.get("client_token")
        if not isinstance(token, str) or not token:
            # Without a token the tab could not tell which message an answer is about.
            await self.send_error("message.send needs a client_token.")
            return
        try:
            room_id, body, attachments = parse_send(frame)
            reply = await self._post_message(room_id, body, attachments, token)
        except Refused as refused:
            reply = {"type": "message.refused", "status": refused.status, "error": refused.error}
        await self.send(text_data=json.dumps({**reply, "client_token": token}))

    @database_sync_to_async
    def _post_message(self, room_id: int, body: str, attachments: list[int], token: str) -> dict:
        try:
            ratelimit.check("send", user_id=self.user.pk, ip=self.client_ip)
            # The send reads the person as they are now, as a request would have them: a name
            # changed since the socket opened shows on the message; a deactivated account
            # sends nothing (SignedOut).
            message = actions.do_send_message(
                self.user, room=room_id, body=body, attachments=attachments, client_token=token
            )
        except (Http404, PermissionDenied, ValidationError, ratelimit.RateLimited) as error:
            raise _refusal(error) from None
        self.user = message.sender
        return {"type": "message.sent", "id": message.pk, "html": message_html(message)}

    @property
    def client_ip(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else "unknown"
