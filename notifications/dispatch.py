"""Entry points other apps call on commit: each only enqueues a task, so a request never
waits for notification work (the task decides who gets what).

    transaction.on_commit(partial(notifications.dispatch.message_sent, message.pk))
"""

from __future__ import annotations

import logging

from django.conf import settings
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


def message_sent(message_id: int) -> None:
    from .tasks import message_sent as task

    if settings.PARLEY_NOTIFICATIONS_ENABLED:
        _enqueue(task, message_id)


def member_added(room_id: int, user_id: int, by_id: int) -> None:
    """For `rooms.actions.do_invite_member`: "added to a room" emails."""
    from .tasks import member_added as task

    if settings.PARLEY_NOTIFICATIONS_ENABLED:
        _enqueue(task, room_id, user_id, by_id)


def _enqueue(task, *args: int) -> None:
    try:
        task.delay(*args)
    except OperationalError:
        # The message is saved and shown live; only its email is lost. Never fail the send.
        log.exception("Could not queue %s%r: is the Celery broker up?", task.name, args)
