from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import Client
from django.urls import reverse

from accounts.models import User
from conftest import PASSWORD, befriend, client_for
from moderation.actions import (
    do_block_user,
    do_report_message,
    do_review_report,
    do_suspend_user,
    do_unblock_user,
)
from moderation.models import Decision, Reason, Report, ReportStatus, ReviewAction, Warning
from rooms.actions import do_create_room, do_open_direct, do_send_message
from rooms.models import Message, RoomKind
from rooms.queries import address_book, listening_room_ids, room_list


@pytest.fixture
def staff(db):
    return User.objects.create_user(
        username="sam", password=PASSWORD, email="sam@example.com", is_staff=True
    )


@pytest.fixture
def scam(room, bob):
    return do_send_message(bob, room=room, body="pay me in gift cards")


def test_report_is_filed_and_staff_are_emailed(
    scam, alice, staff, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        report = do_report_message(alice, message=scam, reason=Reason.SPEND_MONEY)
    assert report.reported == scam.sender
    assert report.message_text == "pay me in gift cards"
    assert [m.to for m in mail.outbox] == [["sam@example.com"]]
    assert "alice" not in mail.outbox[0].body.lower()


def test_reporting_again_updates_the_open_report(scam, alice):
    first = do_report_message(alice, message=scam, reason=Reason.SPEND_MONEY)
    again = do_report_message(alice, message=scam, reason=Reason.OTHER, description="also rude")
    assert first.pk == again.pk
    assert Report.objects.get().reason == Reason.OTHER


def test_something_else_needs_a_description(scam, alice):
    with pytest.raises(ValidationError, match="description is required"):
        do_report_message(alice, message=scam, reason=Reason.OTHER, description="  ")
    assert not Report.objects.exists()


@pytest.mark.parametrize("reason", ["", "made_up"])
def test_unknown_reason_is_refused(scam, alice, reason):
    with pytest.raises(ValidationError):
        do_report_message(alice, message=scam, reason=reason)


def test_cannot_report_own_message(scam, bob):
    with pytest.raises(ValidationError, match="your own"):
        do_report_message(bob, message=scam, reason=Reason.ABUSE)


def test_outsider_cannot_report(scam, mallory):
    with pytest.raises(Http404):
        do_report_message(mallory, message=scam, reason=Reason.ABUSE)


@pytest.mark.parametrize("reason", [r for r in Reason.values if r != Reason.OTHER])
def test_every_reason_can_be_reported_through_the_page(scam, alice, reason):
    client = client_for(alice)
    dialog = client.get(reverse("report_message", args=[scam.pk])).content.decode()
    assert Reason(reason).label.split(" (")[0] in dialog
    response = client.post(reverse("report_message", args=[scam.pk]), {"reason": reason})
    assert response.status_code == 200
    assert "we got your report" in response.content.decode()
    assert Report.objects.get().reason == reason


def test_report_page_refuses_bad_input_cleanly(scam, alice):
    client = client_for(alice)
    url = reverse("report_message", args=[scam.pk])
    assert client.post(url, {"reason": "nope"}).status_code == 400
    response = client.post(url, {"reason": "other"})
    assert response.status_code == 400
    assert "description is required" in response.content.decode()
    assert not Report.objects.exists()


def test_staff_decisions_are_recorded_and_reporter_told(
    scam, alice, staff, inbox, django_capture_on_commit_callbacks
):
    report = do_report_message(alice, message=scam, reason=Reason.SCAM_LINK)
    alice_tabs = inbox(alice)
    with django_capture_on_commit_callbacks(execute=True):
        do_review_report(staff, report=report, decision=Decision.DISMISS)
    report.refresh_from_db()
    assert report.status == ReportStatus.REVIEWED
    assert ReviewAction.objects.get().staff == staff
    (notice,) = [f for f in alice_tabs.frames() if f["type"] == "notice"]
    assert "reviewed" in notice["text"] and "Dismiss" not in notice["text"]


def test_remove_message_is_gone_for_everyone(
    scam, alice, carol, staff, inbox, django_capture_on_commit_callbacks
):
    report = do_report_message(alice, message=scam, reason=Reason.SCAM_LINK)
    carol_tabs = inbox(carol)
    with django_capture_on_commit_callbacks(execute=True):
        do_review_report(staff, report=report, decision=Decision.REMOVE_MESSAGE)
    assert Message.objects.get(pk=scam.pk).is_deleted
    changed = [f for f in carol_tabs.frames() if f["type"] == "message.changed"]
    assert "This message was deleted" in changed[0]["html"]


def test_warn_reaches_only_the_warned_person(scam, alice, bob, staff):
    report = do_report_message(alice, message=scam, reason=Reason.OFF_PLATFORM_PAYMENT)
    do_review_report(staff, report=report, decision=Decision.WARN, note="No gift cards.")
    assert Warning.objects.get().user == bob
    assert "No gift cards." in client_for(bob).get("/rooms/hidden/").content.decode()
    assert "No gift cards." not in client_for(alice).get("/rooms/hidden/").content.decode()


def test_suspended_person_cannot_log_in_and_sessions_end(scam, alice, bob, staff):
    client = client_for(bob)
    report = do_report_message(alice, message=scam, reason=Reason.BUY_ACCOUNT)
    do_review_report(staff, report=report, decision=Decision.SUSPEND)
    assert client.get("/").status_code == 302  # the open session is gone
    assert not Client().login(username="bob", password=PASSWORD)


def test_non_staff_cannot_review(scam, alice):
    report = do_report_message(alice, message=scam, reason=Reason.ABUSE)
    with pytest.raises(PermissionDenied):
        do_review_report(alice, report=report, decision=Decision.SUSPEND)
    with pytest.raises(PermissionDenied):
        do_suspend_user(alice, user=scam.sender)


def test_end_contract_only_for_contract_rooms(alice, bob, staff):
    befriend(alice, bob)
    contract = do_create_room(
        alice, kind=RoomKind.CONTRACT, title="Site", members=[bob], contract_active=True
    )
    message = do_send_message(bob, room=contract, body="send your bank login")
    report = do_report_message(alice, message=message, reason=Reason.SCAM_LINK)
    do_review_report(staff, report=report, decision=Decision.END_CONTRACT)
    contract.refresh_from_db()
    assert not contract.contract_active
    assert contract.messages.filter(kind="system", body="The contract was ended.").exists()


def test_block_refused_while_contract_is_active(alice, bob):
    befriend(alice, bob)
    do_create_room(alice, kind=RoomKind.CONTRACT, title="Site", members=[bob], contract_active=True)
    with pytest.raises(ValidationError, match="contract with them is active"):
        do_block_user(alice, blocked=bob)


def test_blocked_person_loses_the_direct_room_and_the_address_book(alice, bob):
    befriend(alice, bob)
    befriend(bob, alice)
    direct = do_open_direct(alice, other=bob)
    do_send_message(bob, room=direct, body="hi")
    do_block_user(alice, blocked=bob)
    with pytest.raises(PermissionDenied):
        do_send_message(bob, room=direct, body="hello?")
    assert client_for(bob).get(direct.get_absolute_url()).status_code == 403
    assert alice not in address_book(bob)
    assert direct.pk not in [m.room_id for m in room_list(bob)]
    with pytest.raises(ValidationError, match="not in your address book"):
        do_create_room(bob, kind=RoomKind.GROUP, title="Sneaky", members=[alice])
    do_unblock_user(alice, blocked=bob)
    do_send_message(bob, room=direct, body="hello again")


def test_blocked_persons_socket_gets_nothing_from_the_direct_room(
    alice, bob, inbox, django_capture_on_commit_callbacks
):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    do_block_user(alice, blocked=bob)
    bob_tabs = inbox(bob)
    with django_capture_on_commit_callbacks(execute=True):
        do_send_message(alice, room=direct, body="talking to myself")
    assert bob_tabs.frames() == []


def test_a_socket_listens_to_every_room_but_a_direct_one_whose_other_member_blocked_you(
    room, alice, bob, django_assert_num_queries
):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    with django_assert_num_queries(2):
        assert sorted(listening_room_ids(bob.pk)) == sorted([room.pk, direct.pk])
    do_block_user(alice, blocked=bob)
    with django_assert_num_queries(2):
        assert listening_room_ids(bob.pk) == [room.pk]
    # The one who blocked still hears the direct room.
    assert sorted(listening_room_ids(alice.pk)) == sorted([room.pk, direct.pk])


def test_blocked_messages_collapse_in_shared_group_rooms(room, alice, bob):
    do_send_message(bob, room=room, body="visible but collapsed")
    do_block_user(alice, blocked=bob)
    page = client_for(alice).get(room.get_absolute_url()).content.decode()
    assert f'.msg[data-sender="{bob.pk}"]:not(.revealed)' in page
    assert "Message from a blocked person" in page


def test_cannot_block_yourself(alice):
    with pytest.raises(ValidationError):
        do_block_user(alice, blocked=alice)


def test_block_and_unblock_pages(room, alice, bob):
    client = client_for(alice)
    client.post(reverse("block", args=[bob.pk]), {"room": str(room.pk)})
    assert "Bob Jones" in client.get(reverse("blocked_people")).content.decode()
    client.post(reverse("unblock", args=[bob.pk]))
    assert "Bob Jones" not in client.get(reverse("blocked_people")).content.decode()


def test_block_during_contract_is_400_with_reason(alice, bob):
    befriend(alice, bob)
    do_create_room(alice, kind=RoomKind.CONTRACT, title="Site", members=[bob], contract_active=True)
    response = client_for(alice).post(reverse("block", args=[bob.pk]))
    assert response.status_code == 400
    assert "contract" in response.content.decode()
