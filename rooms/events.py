"""Live events: one helper publishes them, after the write commits.

A frame is encoded to JSON once and the same string goes to every recipient's group, so
rendering and encoding cost do not grow with the room's size.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


class MessageEvent(TypedDict):
    type: Literal["message.new", "message.changed"]
    room: int
    id: int
    sender: int
    html: str
    # The room's entry in the conversation list, or "" when the list entry did not change.
    room_html: str
    ts: float


class RoomEvent(TypedDict):
    type: Literal["room.updated"]
    room: int
    html: str
    ts: float


class RoomRemovedEvent(TypedDict):
    type: Literal["room.removed"]
    room: int
    ts: float


class RoomReadEvent(TypedDict):
    type: Literal["room.read"]
    room: int
    last_read_id: int
    unread: int
    mentions: int
    ts: float


class TypingEvent(TypedDict):
    type: Literal["typing"]
    room: int
    user: int
    name: str


class PresenceEvent(TypedDict):
    type: Literal["presence"]
    user: int
    state: str


class NoticeEvent(TypedDict):
    type: Literal["notice"]
    text: str
    ts: float


class MembershipEvent(TypedDict):
    type: Literal["membership.changed"]
    room: int
    favorite: bool
    hidden: bool
    ts: float


Event = (
    MessageEvent
    | RoomEvent
    | RoomRemovedEvent
    | RoomReadEvent
    | MembershipEvent
    | TypingEvent
    | PresenceEvent
    | NoticeEvent
)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def now_ts() -> float:
    return time.time()


def encode(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"))


def publish_on_commit(event: Event, *, user_ids: Iterable[int]) -> None:
    """Send `event` to every open tab of `user_ids` once the current transaction commits."""
    frame = encode(event)
    recipients = sorted(set(user_ids))
    transaction.on_commit(lambda: send_frame(frame, recipients))


def send_frame(frame: str, user_ids: list[int]) -> None:
    layer = get_channel_layer()
    if layer is None or not user_ids:
        return
    async_to_sync(fan_out)(frame, user_ids)


async def fan_out(frame: str, user_ids: list[int]) -> None:
    """Send an encoded frame to every open tab of `user_ids`, now (no transaction involved)."""
    layer = get_channel_layer()
    message = {"type": "live.frame", "frame": frame}
    await asyncio.gather(*(layer.group_send(user_group(uid), message) for uid in user_ids))


def close_sockets_on_commit(user_id: int) -> None:
    """Close every open tab of the user once the transaction commits (a suspension)."""

    def close() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(user_group(user_id), {"type": "session.close"})

    transaction.on_commit(close)
