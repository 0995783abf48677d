"""The live-event layer: channels_redis's pub/sub layer that also tells this process's
consumers when its connection to Redis came back after a loss (a Redis restart, a network cut).

Pub/sub keeps nothing: frames published while a process was not subscribed are gone. redis-py
subscribes again by itself on reconnecting; after that, each consumer of the process gets a
`live.resync` message and asks its tab to replay from the last message it has (the database
is the source of truth). channels_redis 4.3 dropped its own on_disconnect/on_reconnect hooks
(django/channels_redis#406), so this hooks redis-py's reconnect callback on the layer's
pub/sub connection; tests/test_faults.py checks it with a real Redis restart.
"""

from __future__ import annotations

import logging
import types

from channels_redis.pubsub import RedisPubSubChannelLayer

log = logging.getLogger(__name__)

RESYNC = {"type": "live.resync"}


class ResyncingPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        layer = super()._get_layer()
        if not getattr(layer, "parley_watched", False):
            layer.parley_watched = True
            for shard in layer._shards:
                _watch_reconnects(shard, layer)
        return layer


def _watch_reconnects(shard, layer) -> None:
    ensure_redis = shard._ensure_redis

    def ensure_redis_and_watch() -> None:
        fresh = shard._pubsub is None
        ensure_redis()
        if fresh:
            pubsub = shard._pubsub
            resubscribe = pubsub.on_connect

            async def on_connect(self, connection) -> None:
                await resubscribe(connection)
                _tell_consumers(layer)

            # redis-py keeps connect callbacks as weak methods: bind it to the PubSub, which
            # holds it, before the first subscribe registers it.
            pubsub.on_connect = types.MethodType(on_connect, pubsub)

    shard._ensure_redis = ensure_redis_and_watch


def _tell_consumers(layer) -> None:
    message = layer.channel_layer.serialize(RESYNC)
    for queue in list(layer.channels.values()):
        queue.put_nowait(message)
    log.warning(
        "Reconnected to Redis: %d sockets of this process replay what they missed",
        len(layer.channels),
    )
