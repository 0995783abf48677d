"""The Files & Links panel, the preview and the attach controls, as their pages render them."""

from __future__ import annotations

import re

import pytest

from conftest import client_for
from rooms.tests.test_files import eager_celery, png, share_file  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_CHUNK_BYTES = 1024


def names_in(html: str) -> list[str]:
    return re.findall(r'<span class="file-name">([^<]*)</span>', html)


def test_the_panel_lists_files_newest_first_with_size_who_and_thumbnail(room, alice, bob):
    share_file(alice, room, "first.txt", b"x" * 2048)
    photo = share_file(bob, room, "photo.png", png())

    html = client_for(alice).get(f"/rooms/{room.pk}/files/").content.decode()

    assert names_in(html) == ["photo.png", "first.txt"]
    assert "2.0\xa0KB · Alice Adams" in html
    assert "Bob Jones" in html
    assert f'src="/files/{photo.pk}/thumbnail/"' in html
    assert 'data-kind="text"' in html


def test_the_panel_is_paged_and_searched_by_name(room, alice, bob):
    for n in range(22):
        share_file(bob, room, f"sketch-{n:02d}.txt" if n % 2 else f"invoice-{n:02d}.txt", b"x")
    client = client_for(alice)

    first = client.get(f"/rooms/{room.pk}/files/list/").content.decode()
    second = client.get(f"/rooms/{room.pk}/files/list/?page=2").content.decode()
    found = client.get(f"/rooms/{room.pk}/files/list/?q=INVOICE-1").content.decode()
    nothing = client.get(f"/rooms/{room.pk}/files/list/?q=budget").content.decode()

    assert names_in(first)[:2] == ["sketch-21.txt", "invoice-20.txt"]
    assert len(names_in(first)) == 20
    assert "More files" in first
    assert names_in(second) == ["sketch-01.txt", "invoice-00.txt"]
    assert "More files" not in second
    assert names_in(found) == [
        "invoice-18.txt",
        "invoice-16.txt",
        "invoice-14.txt",
        "invoice-12.txt",
        "invoice-10.txt",
    ]
    assert "No files named like “budget”." in nothing


def test_delete_is_offered_to_the_sharer_and_room_admins_only(room, alice, bob, carol):
    share_file(alice, room, "alice.txt", b"a")
    url = f"/rooms/{room.pk}/files/list/"

    assert "Delete</button>" not in client_for(bob).get(url).content.decode()
    assert "Delete</button>" in client_for(carol).get(url).content.decode()
    assert "Delete</button>" in client_for(alice).get(url).content.decode()


@pytest.mark.parametrize(
    ("name", "data", "shown"),
    [
        ("photo.png", png(), '<img src="/files/{id}/view/" alt="photo.png">'),
        ("spec.pdf", b"%PDF-1.7\n", '<iframe src="/files/{id}/view/" title="spec.pdf">'),
        ("clip.webm", b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01webm", '<video src="/files/{id}/view/"'),
        ("song.mp3", b"ID3\x04\x00" + b"\0" * 20, '<audio src="/files/{id}/view/"'),
        ("page.html", b"<html><script>x</script>", '<div class="file-card big">'),
    ],
)
def test_the_preview_shows_each_kind_of_file_its_own_way(room, alice, bob, name, data, shown):
    attachment = share_file(alice, room, name, data)

    html = client_for(bob).get(f"/files/{attachment.pk}/").content.decode()

    assert shown.format(id=attachment.pk) in html
    assert f'href="/files/{attachment.pk}/download/" download>Download</a>' in html
    assert "Delete</button>" not in html
    assert "Delete</button>" in client_for(alice).get(f"/files/{attachment.pk}/").content.decode()


def test_the_room_page_has_the_paperclip_and_the_files_and_links_entry(room, alice, settings):
    settings.DROPBOX_APP_KEY = ""
    html = client_for(alice).get(f"/rooms/{room.pk}/").content.decode()

    assert 'aria-label="Attach file"' in html
    assert 'id="attach-input"' in html
    assert f'data-max-bytes="{settings.MAX_UPLOAD_BYTES}"' in html
    assert f'hx-get="/rooms/{room.pk}/files/"' in html
    assert "Files &amp; Links</button>" in html
    assert "Dropbox" not in html
    assert "dropins.js" not in html


def test_a_dropbox_key_adds_the_dropbox_chooser(room, alice, settings):
    settings.DROPBOX_APP_KEY = "abc123key"
    html = client_for(alice).get(f"/rooms/{room.pk}/").content.decode()

    assert "data-attach-dropbox>Dropbox</button>" in html
    assert (
        '<script src="https://www.dropbox.com/static/api/2/dropins.js" id="dropboxjs" '
        'data-app-key="abc123key" async></script>'
    ) in html


def test_a_file_only_message_shows_its_cards_without_text(room, alice, bob):
    attachment = share_file(alice, room, "plan.pdf", b"%PDF-1.4 plan")

    html = client_for(bob).get(f"/rooms/{room.pk}/").content.decode()

    card = re.search(r'<div class="file-card" data-file="(\d+)" data-kind="pdf">', html)
    assert card and int(card.group(1)) == attachment.pk
    assert 'aria-label="Download plan.pdf"' in html
