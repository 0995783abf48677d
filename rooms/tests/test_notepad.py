from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse

from conftest import client_for
from rooms.actions import NoteConflict, do_archive_room, do_save_note, do_set_hidden
from rooms.models import Note


def test_note_saves_and_renders_notepad_markdown(room, bob):
    note = do_save_note(bob, room=room, body="# Plan\n- one\n  - nested\n1. first", version=0)
    assert note.version == 1
    assert "<h1>Plan</h1>" in note.body_html
    assert "<ul>" in note.body_html and "<ol>" in note.body_html


def test_save_over_a_newer_version_is_refused_and_keeps_the_newer(room, bob):
    do_save_note(bob, room=room, body="tab one", version=0)
    with pytest.raises(NoteConflict, match="another tab"):
        do_save_note(bob, room=room, body="tab two, stale", version=0)
    assert Note.objects.get().body == "tab one"


def test_note_over_100_kb_is_refused(room, bob):
    do_save_note(bob, room=room, body="keep", version=0)
    with pytest.raises(ValidationError, match="at most 100 KB"):
        do_save_note(bob, room=room, body="é" * 60_000, version=1)
    assert Note.objects.get().body == "keep"


def test_outsider_has_no_notepad_in_the_room(room, mallory):
    with pytest.raises(Http404):
        do_save_note(mallory, room=room, body="x", version=0)


def test_note_is_kept_when_room_is_archived_or_hidden(room, alice, bob):
    do_save_note(bob, room=room, body="mine", version=0)
    do_set_hidden(bob, room=room, hidden=True)
    do_archive_room(alice, room=room)
    page = client_for(bob).get(reverse("notepad", args=[room.pk])).content.decode()
    assert "mine" in page


def test_notepad_page_saves_and_reports_conflicts(room, bob):
    client = client_for(bob)
    url = reverse("notepad", args=[room.pk])
    reply = client.post(url, {"body": "**bold**", "version": 0}).json()
    assert reply["version"] == 1 and "<strong>bold</strong>" in reply["html"]
    stale = client.post(url, {"body": "stale", "version": 0})
    assert stale.status_code == 409
    assert "another tab" in stale.content.decode()
    assert client.post(url, {"body": "x", "version": "abc"}).status_code == 400


def test_another_member_gets_404_for_someone_elses_note(room, alice, bob):
    note = do_save_note(bob, room=room, body="private plans", version=0)
    response = client_for(alice).get(reverse("note_show", args=[note.pk]))
    assert response.status_code == 404
    assert b"private plans" not in response.content
    assert b"private plans" in client_for(bob).get(reverse("note_show", args=[note.pk])).content


def test_each_member_sees_only_their_own_note_in_the_room(room, alice, bob):
    do_save_note(bob, room=room, body="bob's secret", version=0)
    page = client_for(alice).get(reverse("notepad", args=[room.pk])).content.decode()
    assert "bob&#x27;s secret" not in page and "bob's secret" not in page
