"""Celery tasks of rooms: thin shells that take ids and call one function in actions.py.

Queued on commit and safe to run twice (settings: CELERY_TASK_ACKS_LATE).
"""

from __future__ import annotations

from celery import shared_task

from . import actions


@shared_task(acks_late=True)
def make_thumbnail(attachment_id: int) -> bool:
    return actions.do_make_thumbnail(attachment_id)


@shared_task(acks_late=True)
def purge_stale_uploads() -> int:
    return actions.do_purge_stale_files()


@shared_task(acks_late=True)
def free_orphaned_call_seats() -> int:
    from .calls import do_free_orphaned_seats  # calls.py builds on actions.py

    return do_free_orphaned_seats()
