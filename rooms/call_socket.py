"""The call frames of the one websocket per tab (LiveConsumer): start, join, leave, state, and
the relay of WebRTC signaling from one seat of a call to another seat of the same call.

Client to server:
    {"type": "call.start", "room": 7, "kind": "video"}
    {"type": "call.join", "call": 3}
    {"type": "call.leave", "call": 3}
    {"type": "call.state", "call": 3, "muted": true, "camera": true, "screen": false,
     "recording": false}
    {"type": "call.signal", "call": 3, "to": "<peer id>", "data": {"description": {...}}}
Server to this socket: call.welcome (its seat), call.signal (from another seat), and errors
{"type": "error", "frame": "call.join", "error": "..."}; to the room: events.CallEvent.
"""

from __future__ import annotations

import json
import time

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from . import calls, events
from .forms import MAX_ID

MAX_PEER_ID = 32
FLAGS = ("muted", "camera", "screen", "recording")
# Call frames per socket: a burst of ICE candidates fits, a flood is refused (a token bucket).
FRAME_BURST = 200
FRAMES_PER_SECOND = 20


class Refused(Exception):
    pass


def _id(frame: dict, key: str) -> int:
    value = frame.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise Refused(f"{frame['type']} needs {key}, a {key} id.")
    return value


def _reason(error: Exception) -> str:
    if isinstance(error, Http404):
        return "No such room or call."
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or "You may not do that."


class CallFrames:
    """Mixed into LiveConsumer: `call_frame` takes every incoming frame whose type starts
    with "call."; `call_relay` delivers signaling sent to this socket's channel."""

    # Set once this socket has held a seat: only then does closing it look for seats to free.
    sat_in_call = False
    call_tokens = float(FRAME_BURST)
    call_tokens_at = 0.0

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.call_tokens = min(
            FRAME_BURST, self.call_tokens + (now - self.call_tokens_at) * FRAMES_PER_SECOND
        )
        self.call_tokens_at = now
        if self.call_tokens < 1:
            return False
        self.call_tokens -= 1
        return True

    async def call_frame(self, kind: str, frame: dict) -> None:
        handler = {
            "call.start": self._call_start,
            "call.join": self._call_join,
            "call.leave": self._call_leave,
            "call.state": self._call_state,
            "call.signal": self._call_signal,
        }.get(kind)
        try:
            if handler is None:
                raise Refused(f"Unknown frame type {kind[:40]!r}.")
            if not self._take_token():
                raise Refused("Too many call frames at once; this one was dropped.")
            await handler(frame)
        except (Refused, ValidationError, PermissionDenied, Http404) as error:
            await self.send(
                text_data=json.dumps({"type": "error", "frame": kind[:40], "error": _reason(error)})
            )

    async def _seated(self, action, **kwargs) -> None:
        seat = await database_sync_to_async(action)(
            self.user, channel_name=self.channel_name, **kwargs
        )
        self.sat_in_call = True
        frame = await database_sync_to_async(calls.welcome)(seat)
        await self.send(text_data=json.dumps(frame))

    async def _call_start(self, frame: dict) -> None:
        room_id = _id(frame, "room")
        kind = frame.get("kind")
        if not isinstance(kind, str):
            raise Refused("call.start needs kind, voice or video.")
        await self._seated(calls.do_start_call, room_id=room_id, kind=kind)

    async def _call_join(self, frame: dict) -> None:
        await self._seated(calls.do_join_call, call_id=_id(frame, "call"))

    async def _call_leave(self, frame: dict) -> None:
        await database_sync_to_async(calls.do_leave_call)(
            self.user, call_id=_id(frame, "call"), channel_name=self.channel_name
        )

    async def _call_state(self, frame: dict) -> None:
        call_id = _id(frame, "call")
        if not all(isinstance(frame.get(flag), bool) for flag in FLAGS):
            raise Refused("call.state needs muted, camera, screen and recording, each true/false.")
        await database_sync_to_async(calls.do_set_call_state)(
            self.user,
            call_id=call_id,
            channel_name=self.channel_name,
            **{flag: frame[flag] for flag in FLAGS},
        )

    async def _call_signal(self, frame: dict) -> None:
        call_id = _id(frame, "call")
        to = frame.get("to")
        if not isinstance(to, str) or not 0 < len(to) <= MAX_PEER_ID:
            raise Refused("call.signal needs to, the peer id of a seat in the call.")
        data = calls.check_signal_data(frame.get("data"))
        room_id, sender, channel = await database_sync_to_async(calls.signal_route)(
            self.user.pk, self.channel_name, call_id, to
        )
        if room_id not in self.rooms:
            raise Refused("You are not in that call.")
        signal: events.CallSignalFrame = {
            "type": "call.signal",
            "call": call_id,
            "peer": sender,
            "data": data,
        }
        await self.channel_layer.send(channel, {"type": "call.relay", "frame": json.dumps(signal)})

    async def call_relay(self, message: dict) -> None:
        await self.send(text_data=message["frame"])

    async def leave_calls(self) -> None:
        if self.sat_in_call:
            await database_sync_to_async(calls.do_leave_calls_of_socket)(self.channel_name)
