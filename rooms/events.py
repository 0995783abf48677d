"""Live events: one helper publishes them, after the write commits.

A frame is encoded to JSON once and the same string goes to every recipient's group, so
rendering and encoding cost do not grow with the room's size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


class MessageEvent(TypedDict):
    type: Literal["message.new", "message.changed"]
    room: int
    id: int
    sender: int
    html: str
    # The room's entry in the conversation list, or "" when the list entry did not change.
    room_html: str
    # For a newly sent message, the id of the room's message before it (0: none, or a replay
    # or change): a tab that has not got that one lost a frame on the way and resumes.
    prev: int
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
    # {person id (a JSON key, so text): "online" | "away" | "offline"}, everyone who changed in
    # one batch (rooms/presence.py).
    states: dict[str, str]


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


class PersonRenamedEvent(TypedDict):
    """A person's name changed: every open page shows the new one where it shows them."""

    type: Literal["person.renamed"]
    user: int
    name: str
    ts: float


class CallPeer(TypedDict):
    """One seat of a call as every member's page shows it."""

    peer: str
    user: int
    name: str
    muted: bool
    camera: bool
    screen: bool
    recording: bool


class CallEvent(TypedDict):
    """A call started, someone joined, left or changed state, or it ended (to the room)."""

    type: Literal["call.started", "call.join", "call.leave", "call.state", "call.ended"]
    room: int
    call: int
    kind: str
    # The seat this event is about; "" when the call ended.
    peer: str
    participants: list[CallPeer]
    # The room's call banner ("Call in progress — Join"), rendered once for every member.
    html: str
    ts: float


class CallWelcomeFrame(TypedDict):
    """The reply to the one socket that started or joined a call: its seat and the others."""

    type: Literal["call.welcome"]
    room: int
    call: int
    kind: str
    peer: str
    started_by: int
    participants: list[CallPeer]


class CallSignalFrame(TypedDict):
    """Signaling (an SDP description or an ICE candidate) from one seat to another seat."""

    type: Literal["call.signal"]
    call: int
    # The sending seat's peer id.
    peer: str
    data: dict


Event = (
    MessageEvent
    | RoomEvent
    | RoomRemovedEvent
    | RoomReadEvent
    | MembershipEvent
    | PersonRenamedEvent
    | TypingEvent
    | PresenceEvent
    | NoticeEvent
    | CallEvent
)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def now_ts() -> float:
    return time.time()


def encode(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"))


def room_group(room_id: int) -> str:
    return f"room.{room_id}"


def publish_on_commit(
    event: Event, *, room_id: int | None = None, user_ids: Iterable[int] = ()
) -> None:
    """Send `event` once the current transaction commits.

    With `room_id` it goes to the room's group (every open tab of every member, one publish
    whatever the room's size); with `user_ids` to those people's tabs only.
    """
    frame = encode(event)
    recipients = sorted(set(user_ids))
    transaction.on_commit(
        lambda: send_frame(frame, room_id=room_id, user_ids=recipients), robust=True
    )


def control_on_commit(user_id: int, control: dict) -> None:
    """Tell every open tab of one person something about their socket (join a room, close)."""
    _control_on_commit(user_group(user_id), control)


def leave_room_on_commit(user_id: int, room_id: int) -> None:
    """Stop every open tab of the person hearing the room. Sent through the room's own group,
    so it is in order with the room's frames: none published after it reaches them."""
    leave = {"type": "room.leave", "room": room_id, "user": user_id}
    _control_on_commit(room_group(room_id), leave)


def _control_on_commit(group: str, control: dict) -> None:
    if get_channel_layer() is None:
        return
    transaction.on_commit(lambda: async_to_sync(_send_control)(group, control), robust=True)


async def _send_control(group: str, control: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, control)


def send_frame(frame: str, *, room_id: int | None = None, user_ids: list[int] = ()) -> None:
    """Publish now. Losing a frame is allowed (tabs catch up from the database); failing the
    request that already committed is not, so errors are logged, never raised."""
    try:
        async_to_sync(fan_out)(frame, room_id=room_id, user_ids=list(user_ids))
    except Exception:
        logger.exception("Could not publish a live event; tabs will catch up on reconnect")


async def fan_out(
    frame: str,
    *,
    room_id: int | None = None,
    user_ids: list[int] = (),
    skip_user: int | None = None,
) -> None:
    """Publish an encoded frame to a room's group and/or people's groups; `skip_user`'s own
    tabs drop it (someone's typing is news only to the others)."""
    layer = get_channel_layer()
    if layer is None:
        return
    if room_id is not None:
        message = {"type": "live.frame", "frame": frame, "room": room_id}
        if skip_user is not None:
            message["skip_user"] = skip_user
        await layer.group_send(room_group(room_id), message)
    for user_id in user_ids:
        await layer.group_send(user_group(user_id), {"type": "live.frame", "frame": frame})


def close_sockets_on_commit(user_id: int, *, keep_session: str = "") -> None:
    """Close every open tab of the user once the transaction commits (a suspension), or every
    tab but those of session `keep_session` (a new password, set in that session)."""
    closing = {"type": "session.close"}
    if keep_session:
        closing["keep"] = session_digest(keep_session)
    control_on_commit(user_id, closing)


def session_digest(session_key: str) -> str:
    """Names a session in a control message without passing its key through Redis."""
    return hashlib.sha256(session_key.encode()).hexdigest()


def close_signed_out_tabs(sender, request, user, **kwargs) -> None:
    """user_logged_out: the open tabs of the session signing out close (a socket would
    otherwise keep sending and receiving for it); the person's other sessions keep theirs."""
    session_key = getattr(request, "session", None) and request.session.session_key
    if user is not None and session_key:
        closing = {"type": "session.close", "session": session_digest(session_key)}
        control_on_commit(user.pk, closing)
