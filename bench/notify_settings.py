"""Settings for the server processes of bench/notify.py: Parley's, with a larger Redis pool.

rooms/events.py sends a live frame with one concurrent group_send per member; redis-py's
asyncio pool allows 100 connections by default, so a 501-member room fails with
MaxConnectionsError before notifications are even involved. Until the fan-out bounds its
concurrency, this benchmark raises the pool limit for its own servers.
"""

from messages_site.settings import *  # noqa: F403
from messages_site.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "max_connections": 1000}]
