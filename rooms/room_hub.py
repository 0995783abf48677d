"""A room's live frames reach this server process once, and its open sockets in that room by a
loop over them.

Each server process (each event loop) has one hub with one channel of the channel layer. The
hub's channel joins a room's group while any socket of this process listens to that room, and
leaves it when the last one goes. A frame for the room is then read and decoded once per
process, and handed to each of its sockets in turn, instead of being queued, decoded and
dispatched once per socket by Channels (what made a delivery cost several times the write
itself). A person's own group (their frames, room joins) stays on each socket's own channel;
leaving a room comes through the room's group, in order with its frames.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from .events import room_group

log = logging.getLogger(__name__)


class Listener(Protocol):
    async def room_message(self, message: dict) -> None:
        """A message for the room's group: a live frame, or someone leaving the room."""


class RoomHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel: str | None = None
        # Weak: a socket whose application died without its disconnect is not kept alive here.
        self.listeners: dict[int, weakref.WeakSet[Listener]] = {}
        # Rooms whose group the hub's channel is in; changed only under `changing`, so that a
        # join and a leave of the same room never race in the layer.
        self.subscribed: set[int] = set()
        self.changing = asyncio.Lock()
        # Held so the reading task lives: the event loop keeps only a weak reference to it.
        self.reader: asyncio.Task | None = None

    async def join(self, room_id: int, listener: Listener) -> None:
        """Start handing `listener` the room's frames; returns once the room's group is heard."""
        self.listeners.setdefault(room_id, weakref.WeakSet()).add(listener)
        if room_id in self.subscribed:
            return
        async with self.changing:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.reader = asyncio.get_running_loop().create_task(self._read())
            if room_id not in self.subscribed and self.listeners.get(room_id):
                await self.layer.group_add(room_group(room_id), self.channel)
                self.subscribed.add(room_id)

    async def leave(self, room_id: int, listener: Listener) -> None:
        listeners = self.listeners.get(room_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.listeners[room_id]
        if room_id not in self.subscribed or room_id in self.listeners:
            return
        async with self.changing:
            if room_id in self.subscribed and room_id not in self.listeners:
                self.subscribed.discard(room_id)
                await self.layer.group_discard(room_group(room_id), self.channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # the layer reconnects by itself; the hub must outlive a hiccup
                log.exception("The room hub could not read its channel; trying again")
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "live.resync":
                continue  # each socket gets its own, on its own channel
            for listener in list(self.listeners.get(message.get("room"), ())):
                try:
                    await listener.room_message(message)
                except Exception:  # one socket's failure must not cost the others their frame
                    log.exception("A room's message could not be handed to a socket")


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoomHub] = weakref.WeakKeyDictionary()


def hub() -> RoomHub:
    """This event loop's hub (a server process has one loop; tests start one per test)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = RoomHub(get_channel_layer())
    return found
