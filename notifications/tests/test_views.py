"""The settings pages: Notifications and Out-of-Office Responder."""

from __future__ import annotations

import re
from datetime import date

import pytest

from conftest import client_for
from notifications.models import Frequency, MutedRoom, NotificationSettings, OutOfOffice, Scope

pytestmark = pytest.mark.django_db

VALID = {
    "frequency": "hourly",
    "scope": "direct",
    "email_new_messages": "on",
    "email_added_to_room": "on",
    "desktop": "on",
}


def test_settings_page_has_both_sections(room, bob):
    page = client_for(bob).get("/settings/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<h1 id="notifications-heading">Notifications</h1>' in html
    assert '<h2 id="out-of-office-heading">Out-of-Office Responder</h2>' in html
    assert re.search(r'<input type="radio" name="frequency" value="immediately"[^>]* checked', html)
    assert re.search(r'<input type="radio" name="scope" value="all"[^>]* checked', html)
    assert "Mute Design" in html


def test_out_of_office_url_shows_the_page(bob):
    page = client_for(bob).get("/settings/out-of-office/")
    assert page.status_code == 200
    assert b"Out-of-Office Responder" in page.content


def test_settings_need_a_login(client):
    assert client.get("/settings/notifications/").status_code == 302


def test_saving_notification_settings(bob):
    response = client_for(bob).post("/settings/notifications/", VALID)
    assert response.status_code == 302
    prefs = NotificationSettings.objects.get(user=bob)
    assert (prefs.frequency, prefs.scope) == (Frequency.HOURLY, Scope.DIRECT_AND_MENTIONS)
    assert prefs.email_new_messages and prefs.email_added_to_room and prefs.desktop
    assert not prefs.email_files_shared and not prefs.email_report_reviewed


@pytest.mark.parametrize(
    "change",
    [{"frequency": "weekly"}, {"scope": "everything"}, {"frequency": ""}],
)
def test_bad_notification_settings_are_a_400_and_change_nothing(bob, change):
    client = client_for(bob)
    client.post("/settings/notifications/", VALID)
    response = client.post("/settings/notifications/", {**VALID, "desktop": "", **change})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content or b"required" in response.content
    prefs = NotificationSettings.objects.get(user=bob)
    assert prefs.frequency == Frequency.HOURLY and prefs.desktop


def test_turn_off_all_and_back(bob):
    client = client_for(bob)
    client.post("/settings/notifications/off/", {"on": "1"})
    assert NotificationSettings.objects.get(user=bob).all_off
    page = client.get("/settings/notifications/")
    assert b"Turn notifications back on" in page.content
    client.post("/settings/notifications/off/", {"on": "0"})
    assert not NotificationSettings.objects.get(user=bob).all_off


def test_bad_switch_value_is_a_400(bob):
    response = client_for(bob).post("/settings/notifications/off/", {"on": "maybe"})
    assert response.status_code == 400
    assert b"on (1) or off (0)" in response.content
    assert not NotificationSettings.objects.filter(user=bob).exists()


def test_mute_and_unmute_a_room(room, bob):
    client = client_for(bob)
    assert (
        client.post(f"/settings/notifications/rooms/{room.pk}/mute/", {"on": "1"}).status_code
        == 302
    )
    assert MutedRoom.objects.filter(user=bob, room=room).exists()
    assert b"Unmute Design" in client.get("/settings/notifications/").content
    client.post(f"/settings/notifications/rooms/{room.pk}/mute/", {"on": "0"})
    assert not MutedRoom.objects.exists()


def test_outsider_cannot_mute_a_room(room, mallory):
    response = client_for(mallory).post(
        f"/settings/notifications/rooms/{room.pk}/mute/", {"on": "1"}
    )
    assert response.status_code == 404
    assert not MutedRoom.objects.exists()


def test_desktop_settings_json(room, bob):
    client = client_for(bob)
    client.post("/settings/notifications/", VALID)
    client.post(f"/settings/notifications/rooms/{room.pk}/mute/", {"on": "1"})
    data = client.get("/settings/notifications/desktop.json").json()
    assert data == {"enabled": True, "muted_rooms": [room.pk]}


def test_saving_the_responder(bob):
    response = client_for(bob).post(
        "/settings/out-of-office/",
        {"enabled": "on", "message": "Back Monday", "start": "2030-01-02", "end": "2030-01-09"},
    )
    assert response.status_code == 302
    row = OutOfOffice.objects.get(user=bob)
    assert (row.enabled, row.message, row.start, row.end) == (
        True,
        "Back Monday",
        date(2030, 1, 2),
        date(2030, 1, 9),
    )


@pytest.mark.parametrize(
    "form, error",
    [
        ({"start": "2030-01-09", "end": "2030-01-02"}, b"on or after the first day"),
        ({"start": "next week", "end": "2030-01-02"}, b"Enter a valid date"),
        ({"start": "", "end": "2030-01-02"}, b"required"),
        ({"start": "2030-01-02", "end": "2030-01-03", "message": "x" * 2001}, b"at most 2000"),
    ],
)
def test_bad_responder_input_is_a_400_and_changes_nothing(bob, form, error):
    client = client_for(bob)
    client.post(
        "/settings/out-of-office/",
        {"enabled": "on", "message": "Away", "start": "2030-01-02", "end": "2030-01-09"},
    )
    response = client.post("/settings/out-of-office/", {"enabled": "", **form})
    assert response.status_code == 400
    assert error in response.content
    row = OutOfOffice.objects.get(user=bob)
    assert (row.enabled, row.message, row.end) == (True, "Away", date(2030, 1, 9))
