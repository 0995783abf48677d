"""Signed out, a script's request gets 401 with words; a page the browser opens, the login page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from conftest import client_for
from rooms.actions import do_create_upload
from rooms.models import UploadChunk

pytestmark = pytest.mark.django_db

SIGNED_OUT = "You are signed out. Sign in again (reload the page) to go on."


def test_upload_chunk_from_a_signed_out_script_is_refused_and_stores_nothing(room, bob):
    upload = do_create_upload(bob, room=room, name="notes.txt", size=5)
    url = reverse("upload_chunk", args=[upload.pk, 0])
    response = Client().put(
        url, b"hello", content_type="application/octet-stream", headers={"Sec-Fetch-Mode": "cors"}
    )
    assert response.status_code == 401
    assert response.content.decode() == SIGNED_OUT
    assert response["Content-Type"].startswith("text/plain")
    assert not UploadChunk.objects.filter(upload=upload).exists()
    # Bob, still signed in elsewhere, goes on where he was.
    assert client_for(bob).get(reverse("upload_detail", args=[upload.pk])).json()["received"] == []


def test_htmx_request_when_signed_out_gets_401(room):
    response = Client().get(reverse("room_list"), headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.content.decode() == SIGNED_OUT


def test_page_opened_when_signed_out_still_goes_to_the_login_page(room):
    response = Client().get(room.get_absolute_url(), headers={"Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Client().get(room.get_absolute_url()).status_code == 302  # no Fetch Metadata at all
