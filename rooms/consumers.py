"""The one websocket each browser tab opens: it carries live frames and replays what was missed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import events
from .fragments import message_html
from .queries import catch_up

MAX_FRAME_BYTES = 4096
MAX_ID = 2**63 - 1  # a database bigint
MAX_TIMESTAMP = 253402300799  # 9999-12-31, the largest a datetime holds


class LiveConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.group = events.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self.send_error("Frames are JSON text of at most 4 KB.")
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
            await self.send(text_data='{"type":"pong"}')
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
        frames, truncated = await self._catch_up_frames(last_id, since_dt)
        for text in frames:
            await self.send(text_data=text)
        await self.send(text_data=json.dumps({"type": "resume.done", "truncated": truncated}))

    @database_sync_to_async
    def _catch_up_frames(self, last_id: int, since: datetime | None) -> tuple[list[str], bool]:
        messages, truncated = catch_up(self.user, last_id=last_id, since=since)
        frames = []
        for message in messages:
            event: events.MessageEvent = {
                "type": "message.new" if message.pk > last_id else "message.changed",
                "room": message.room_id,
                "id": message.pk,
                "sender": message.sender_id,
                "html": message_html(message),
                "room_html": "",
                "ts": message.changed.timestamp(),
            }
            frames.append(events.encode(event))
        return frames, truncated

    async def send_error(self, text: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "error": text}))

    async def live_frame(self, message: dict) -> None:
        await self.send(text_data=message["frame"])
