"""Every write for safety: reports, their review by staff, blocks and suspensions."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from rooms import events
from rooms.actions import do_end_contract, do_remove_message
from rooms.models import Message, RoomKind
from rooms.queries import access_message

from .models import Block, Decision, Reason, Report, ReportStatus, ReviewAction, Warning
from .queries import active_contract_between, direct_room_between

MAX_DESCRIPTION = 2000


@transaction.atomic
def do_report_message(
    reporter: User, *, message: Message, reason: str, description: str = ""
) -> Report:
    """File a report, or update the reporter's open report on the same message."""
    message = access_message(reporter, message.pk)
    if message.sender_id == reporter.pk:
        raise ValidationError("You cannot report your own message.")
    if reason not in Reason.values:
        raise ValidationError("Pick one of the reasons.")
    description = description.strip()
    if reason == Reason.OTHER and not description:
        raise ValidationError(
            "Tell us what happened: a description is required for “Something else”."
        )
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"A description can be at most {MAX_DESCRIPTION:,} characters.")
    report = (
        Report.objects.select_for_update()
        .filter(message=message, reporter=reporter, status=ReportStatus.OPEN)
        .first()
    )
    if report is None:
        report = Report.objects.create(
            message=message,
            reporter=reporter,
            reported_id=message.sender_id,
            message_text=message.body,
            reason=reason,
            description=description,
        )
        from .tasks import email_staff_about_report

        transaction.on_commit(lambda: email_staff_about_report.delay(report.pk))
    else:
        report.reason = reason
        report.description = description
        report.save(update_fields=["reason", "description", "updated"])
    return report


@transaction.atomic
def do_review_report(staff: User, *, report: Report, decision: str, note: str = "") -> ReviewAction:
    """Staff act on a report; the action is recorded and the reporter told it was reviewed."""
    if not staff.is_staff:
        raise PermissionDenied("Only staff review reports.")
    if decision not in Decision.values:
        raise ValidationError("Unknown decision.")
    report = Report.objects.select_for_update().select_related("message__room").get(pk=report.pk)
    message = report.message
    if decision == Decision.REMOVE_MESSAGE:
        do_remove_message(staff, message=message)
    elif decision == Decision.WARN:
        text = note.strip() or "Please follow Parley's rules: keep payments and contact on Parley."
        Warning.objects.create(user_id=report.reported_id, report=report, text=text)
        _notify(report.reported_id, f"A warning from Parley staff: {text}")
    elif decision == Decision.SUSPEND:
        do_suspend_user(staff, user=report.reported)
    elif decision == Decision.END_CONTRACT:
        if message.room.kind != RoomKind.CONTRACT:
            raise ValidationError("The reported message is not in a contract room.")
        do_end_contract(staff, room=message.room)
    action = ReviewAction.objects.create(report=report, staff=staff, decision=decision, note=note)
    if report.status != ReportStatus.REVIEWED:
        report.status = ReportStatus.REVIEWED
        report.save(update_fields=["status", "updated"])
        _notify(report.reporter_id, "Thanks: Parley staff reviewed a message you reported.")
    return action


def _notify(user_id: int, text: str) -> None:
    event: events.NoticeEvent = {"type": "notice", "text": text, "ts": events.now_ts()}
    events.publish_on_commit(event, user_ids=[user_id])


@transaction.atomic
def do_suspend_user(staff: User, *, user: User) -> None:
    """Suspend: no more logins, open sessions end at their next request, sockets close."""
    if not staff.is_staff:
        raise PermissionDenied("Only staff suspend people.")
    if user.is_staff:
        raise ValidationError("Staff accounts cannot be suspended here.")
    User.objects.filter(pk=user.pk).update(is_active=False)
    events.close_sockets_on_commit(user.pk)


@transaction.atomic
def do_unsuspend_user(staff: User, *, user: User) -> None:
    if not staff.is_staff:
        raise PermissionDenied("Only staff lift suspensions.")
    User.objects.filter(pk=user.pk).update(is_active=True)


@transaction.atomic
def do_block_user(blocker: User, *, blocked: User) -> Block:
    if blocked.pk == blocker.pk:
        raise ValidationError("You cannot block yourself.")
    contract = active_contract_between(blocker.pk, blocked.pk)
    if contract is not None:
        raise ValidationError(
            f"You can't block {blocked.name} while your contract with them is active "
            f"(“{contract.title}”). End the contract first, or report a message to Parley staff."
        )
    block, _ = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
    direct = direct_room_between(blocker.pk, blocked.pk)
    if direct is not None:
        # Their open tabs stop receiving the conversation at once.
        events.leave_room_on_commit(blocked.pk, direct.pk)
    return block


@transaction.atomic
def do_unblock_user(blocker: User, *, blocked: User) -> None:
    deleted, _ = Block.objects.filter(blocker=blocker, blocked=blocked).delete()
    direct = direct_room_between(blocker.pk, blocked.pk)
    if deleted and direct is not None:
        events.control_on_commit(blocked.pk, {"type": "room.join", "room": direct.pk})


@transaction.atomic
def do_mark_warnings_seen(user: User) -> None:
    Warning.objects.filter(user=user, seen__isnull=True).update(seen=timezone.now())
