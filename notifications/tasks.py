"""Celery tasks: thin shells that take ids, reload, and call one function in actions.py.

All run with late acknowledgement (settings: CELERY_TASK_ACKS_LATE) and are safe to run twice.
"""

from __future__ import annotations

from celery import shared_task

from messages_site.celery import app

from . import actions


def celery_is_eager() -> bool:
    return bool(app.conf.task_always_eager)


@shared_task(acks_late=True)
def room_messages_sent(room_id: int) -> int:
    """Queue the emails (and post the automatic replies) of the room's messages waiting for
    them; a full chunk hands on the rest. Published by `dispatch.message_sent`.

    It replaced a task per message, `message_sent(message_id)`: a worker drops one of those
    still in the broker as unregistered, and the sweep queues its message once ten seconds old.
    """
    queued = actions.queue_room_emails(room_id)
    if queued >= actions.SEND_CHUNK:
        room_messages_sent.delay(room_id)
    return queued


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=5, max_retries=8)
def send_due_notifications(room_id: int | None = None) -> int:
    """Send what is due (in one room, or everywhere); a full chunk hands on the rest.

    The sweep (everywhere, run by the beat) first queues messages whose own task was lost.
    """
    if room_id is None:
        actions.queue_left_behind()
    report = actions.send_due_emails(room_id=room_id)
    if report.claimed >= actions.SEND_CHUNK:
        send_due_notifications.delay(room_id)
    return report.sent


@shared_task(acks_late=True)
def member_added(room_id: int, user_id: int, by_id: int) -> None:
    actions.send_added_to_room_email(room_id=room_id, user_id=user_id, by_id=by_id)


@shared_task(acks_late=True)
def delete_old_records() -> int:
    return actions.delete_expired_reply_tokens() + actions.delete_old_email_batches()
