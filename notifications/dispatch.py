"""Entry points other apps call on commit: each only enqueues a task, so a request never
waits for notification work (the task decides who gets what).

    transaction.on_commit(partial(notifications.dispatch.message_sent, message.room_id))

A busy room costs one task, not one per message: once this process has published
`room_messages_sent(room)` to run in PARLEY_NOTIFY_ROOM_DELAY_SECONDS, the room's next messages
publish nothing until that task is about to run. Such a message is not lost: it was committed
before this call, so the task, which runs later and reads every message of the room whose
emails are not queued yet (`Message.emails_queued`), finds it. Should that task run early (a
worker's clock ahead of this one's by more than SAFETY_MARGIN) or be lost (a killed worker, a
restarted Redis), the beat's sweep queues the message once it is ten seconds old.

With eager Celery (the tests, `make run`) nothing waits: each message runs the task at once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from time import monotonic

from django.conf import settings
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)

# A room task due to run this soon (seconds) may read the room before the commit just made
# reaches it: the message publishes a task of its own.
SAFETY_MARGIN = 0.25

# Room id -> when the room task this process published runs (monotonic), soonest first.
_room_task_due: OrderedDict[int, float] = OrderedDict()
_room_task_lock = threading.Lock()


def message_sent(room_id: int) -> None:
    from .tasks import celery_is_eager
    from .tasks import room_messages_sent as task

    if not settings.PARLEY_NOTIFICATIONS_ENABLED:
        return
    if celery_is_eager():
        _enqueue(task, room_id)
        return
    delay = settings.PARLEY_NOTIFY_ROOM_DELAY_SECONDS
    due = _reserve_room_task(room_id, delay)
    if due is not None and not _enqueue(task, room_id, countdown=delay):
        _forget_room_task(room_id, due)  # so that the room's next message tries again


def member_added(room_id: int, user_id: int, by_id: int) -> None:
    """For `rooms.actions.do_invite_member`: "added to a room" emails."""
    from .tasks import member_added as task

    if settings.PARLEY_NOTIFICATIONS_ENABLED:
        _enqueue(task, room_id, user_id, by_id)


def _enqueue(task, *args: int, countdown: float | None = None) -> bool:
    try:
        task.apply_async(args, countdown=countdown)
    except OperationalError:
        # What was written stays. A message's emails are queued by the sweep (the database says
        # they are waiting); an "added to a room" email is lost. Never fail the request.
        log.exception("Could not queue %s%r: is the Celery broker up?", task.name, args)
        return False
    return True


def _reserve_room_task(room_id: int, delay: float) -> float | None:
    """When a room task published now would run, recorded as this process's task for the
    room; None when the one already published runs late enough to find this message.

    The publish itself happens outside the lock: a message of the same room in another thread
    meanwhile publishes nothing, and should this publish fail, waits for the sweep.
    """
    now = monotonic()
    with _room_task_lock:
        # Entries are in the order they run while the delay stays the same: the run ones are
        # dropped from the front, so the map holds only the rooms of the last few seconds.
        while _room_task_due and next(iter(_room_task_due.values())) <= now:
            _room_task_due.popitem(last=False)
        due = _room_task_due.get(room_id)
        if due is not None and due - SAFETY_MARGIN > now:
            return None
        due = now + delay
        _room_task_due[room_id] = due
        _room_task_due.move_to_end(room_id)
        return due


def _forget_room_task(room_id: int, due: float) -> None:
    with _room_task_lock:
        if _room_task_due.get(room_id) == due:
            del _room_task_due[room_id]
