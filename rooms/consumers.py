"""The one websocket each browser tab opens: it carries live frames and replays what was missed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError
from django.utils import timezone

from accounts.sessions import session_expiry

from . import events, presence, room_hub
from .call_socket import CallFrames
from .forms import MAX_ID
from .fragments import with_message_html
from .message_socket import MessageFrames
from .queries import catch_up, listening_room_ids

# Call signalling (SDP offers) needs more than chat frames do.
MAX_FRAME_BYTES = 64 * 1024
MAX_TIMESTAMP = 253402300799  # 9999-12-31, the largest a datetime holds
# Clients send "typing" at most every few seconds; anything faster is dropped here too.
TYPING_INTERVAL = 2.0
# How soon a tab whose session could not be looked up (the database away) asks again.
SESSION_RETRY = timedelta(minutes=1)

log = logging.getLogger(__name__)


class LiveConsumer(MessageFrames, CallFrames, AsyncWebsocketConsumer):
    """Listens to its person's group (their own events) on its channel, and to the rooms they
    are in through this process's room hub."""

    # The state this tab last wrote to presence (its process keeps the entry fresh).
    presence_reported: presence.State | None = None
    # Handling a message of its own; rooms' messages from the hub wait in `held` meanwhile.
    busy: bool = False
    # Closes the socket when its session ends (session_watch).
    session_watcher: asyncio.Task | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[dict] = []

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.session_digest = events.session_digest(self.scope["session"].session_key or "")
        self.group = events.user_group(user.pk)
        # Rooms' frames come through this process's hub; the person's own on this channel.
        self.hub = room_hub.hub()
        self.typing_sent: dict[int, float] = {}
        self.rooms: set[int] = set(await database_sync_to_async(listening_room_ids)(user.pk))
        await self.channel_layer.group_add(self.group, self.channel_name)
        for room_id in self.rooms:
            await self.hub.join(room_id, self)
        await self.accept()
        await self.set_presence("online")
        session = self.scope["session"]
        self.session_watcher = asyncio.get_running_loop().create_task(
            self.session_watch(session.session_key, session.expires_at)
        )

    async def session_watch(self, session_key: str, expires_at: datetime | None) -> None:
        """A session ends (its two weeks are up) while a tab is open: the tab is signed out then,
        as its next page load would be. Saving a session moves its end: looked up again then."""
        while expires_at is not None:
            await asyncio.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()))
            if expires_at > timezone.now():
                continue
            try:
                expires_at = await database_sync_to_async(session_expiry)(session_key)
            except DatabaseError:
                log.warning("Could not look up an open tab's session; trying again in a minute")
                expires_at = timezone.now() + SESSION_RETRY
        try:
            # Through the socket's own channel, so it waits for whatever the socket is doing.
            await self.channel_layer.send(self.channel_name, {"type": "session.close"})
        except Exception:  # the layer is down: close now rather than leave the tab open
            await self.session_close({})

    async def disconnect(self, code: int) -> None:
        if self.session_watcher is not None:
            self.session_watcher.cancel()
        if hasattr(self, "group"):
            await self.leave_calls()
            await self.channel_layer.group_discard(self.group, self.channel_name)
            for room_id in self.rooms:
                await self.hub.leave(room_id, self)
            await self.set_presence(None)

    async def dispatch(self, message: dict) -> None:
        # The hot paths skip Channels' per-message database-connection housekeeping (a hop to
        # the database thread each time): relaying a frame touches no database, and a frame
        # from the tab (a ping, a typing note) reaches the database only through
        # database_sync_to_async, which does that housekeeping itself.
        if message["type"] == "live.frame":
            await self.live_frame(message)
            return
        # The room hub hands over rooms' messages outside this loop over the socket's own
        # messages: while one is being handled (connecting, a replay, a call frame), they wait
        # for it, as the socket's own messages do, so that a reply precedes the news it causes.
        self.busy = True
        try:
            if message["type"] == "websocket.receive":
                await self.websocket_receive(message)
            else:
                await super().dispatch(message)
        finally:
            while self.held and message["type"] != "websocket.disconnect":
                await self._room_message_now(self.held.pop(0))
            self.held.clear()
            self.busy = False

    async def room_message(self, message: dict) -> None:
        """From the room hub: a frame for one of this person's rooms, or a member leaving."""
        if self.busy:
            self.held.append(message)
        else:
            await self._room_message_now(message)

    async def _room_message_now(self, message: dict) -> None:
        if message["type"] == "live.frame":
            await self.live_frame(message)
        elif message["type"] == "room.leave" and message.get("user") == self.user.pk:
            await self.room_leave(message)

    async def set_presence(self, state: presence.State | None) -> None:
        if state == self.presence_reported:
            return  # a ping that changes nothing
        self.presence_reported = state
        await presence.tab_changed(self.user.pk, self.channel_name, state, self.rooms)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self.send_error("Frames are JSON text of at most 64 KB.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_error("That frame is not JSON.")
            return
        if not isinstance(frame, dict):
            await self.send_error("A frame is a JSON object with a type.")
            return
        kind = frame.get("type")
        if kind == "resume":
            await self.resume(frame)
        elif kind == "ping":
            await self.set_presence("away" if frame.get("away") is True else "online")
            await self.send(text_data='{"type":"pong"}')
        elif kind == "typing":
            await self.typing(frame)
        elif kind == "message.send":
            await self.message_send(frame)
        elif isinstance(kind, str) and kind.startswith("call."):
            await self.call_frame(kind, frame)
        else:
            await self.send_error(f"Unknown frame type {str(kind)[:40]!r}.")

    async def resume(self, frame: dict) -> None:
        last_id = frame.get("last_id")
        since = frame.get("since")
        if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 <= last_id <= MAX_ID:
            await self.send_error("resume needs last_id, a whole number ≥ 0.")
            return
        if since is not None and (
            not isinstance(since, int | float)
            or isinstance(since, bool)
            or not 0 <= since <= MAX_TIMESTAMP
        ):
            await self.send_error("resume's since is a Unix time in seconds.")
            return
        since_dt = datetime.fromtimestamp(since, tz=UTC) if since is not None else None
        frames, truncated = await self._catch_up_frames(sorted(self.rooms), last_id, since_dt)
        for text in frames:
            await self.send(text_data=text)
        await self.send(text_data=json.dumps({"type": "resume.done", "truncated": truncated}))

    @database_sync_to_async
    def _catch_up_frames(
        self, room_ids: list[int], last_id: int, since: datetime | None
    ) -> tuple[list[str], bool]:
        messages, truncated = catch_up(room_ids, last_id=last_id, since=since)
        # After a restart or a morning's reconnects, every member's tab asks for the same
        # missed messages: the fragment cache renders each once for all of them.
        with_message_html(messages)
        frames = []
        for message in messages:
            event: events.MessageEvent = {
                "type": "message.new" if message.pk > last_id else "message.changed",
                "room": message.room_id,
                "id": message.pk,
                "sender": message.sender_id,
                "html": message.html,
                "room_html": "",
                # Replayed in id order from the database: nothing to check against.
                "prev": 0,
                "ts": message.changed.timestamp(),
            }
            frames.append(events.encode(event))
        return frames, truncated

    async def typing(self, frame: dict) -> None:
        room_id = frame.get("room")
        if not isinstance(room_id, int) or isinstance(room_id, bool) or not 0 < room_id <= MAX_ID:
            await self.send_error("typing needs room, a room id.")
            return
        now = time.monotonic()
        if now - self.typing_sent.get(room_id, 0.0) < TYPING_INTERVAL:
            return
        self.typing_sent[room_id] = now
        if room_id not in self.rooms:
            await self.send_error("No such room.")
            return
        event: events.TypingEvent = {
            "type": "typing",
            "room": room_id,
            "user": self.user.pk,
            "name": self.user.name,
        }
        await events.fan_out(events.encode(event), room_id=room_id, skip_user=self.user.pk)

    async def send_error(self, text: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "error": text}))

    async def session_close(self, message: dict) -> None:
        """A suspension closes every tab of the person; signing out, that session's tabs; a new
        password, the tabs of every other session."""
        if message.get("session", self.session_digest) != self.session_digest:
            return
        if message.get("keep") == self.session_digest:
            return
        await self.send(text_data='{"type":"session.ended"}')
        await self.close(code=4403)

    async def live_frame(self, message: dict) -> None:
        room_id = message.get("room")
        if room_id is not None and room_id not in self.rooms:
            return  # left the room a moment ago; the group unsubscription is catching up
        if message.get("skip_user") == self.user.pk:
            return
        await self.send(text_data=message["frame"])

    async def live_resync(self, message: dict) -> None:
        """This process lost its Redis connection for a while: frames may be gone."""
        await self.send(text_data='{"type":"resync"}')

    async def room_join(self, message: dict) -> None:
        self.rooms.add(message["room"])
        await self.hub.join(message["room"], self)

    async def room_leave(self, message: dict) -> None:
        self.rooms.discard(message["room"])
        await self.hub.leave(message["room"], self)
