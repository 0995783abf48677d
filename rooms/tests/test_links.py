"""Links shared in messages: found at send and edit, cloud-drive links shown as file cards."""

from __future__ import annotations

import pytest

from conftest import client_for
from rooms.actions import do_delete_message, do_edit_message, do_send_message
from rooms.links import cloud_file, extract_urls
from rooms.models import Link


@pytest.mark.parametrize(
    ("url", "provider", "title"),
    [
        ("https://www.dropbox.com/s/a1b2c3/Budget%202024.xlsx?dl=0", "dropbox", "Budget 2024.xlsx"),
        ("https://www.dropbox.com/scl/fi/xyz123/Brief.pdf?rlkey=abc&dl=0", "dropbox", "Brief.pdf"),
        ("https://www.dropbox.com/sh/abc/AAD_x?dl=0", "dropbox", "AAD_x"),
        ("https://dl.dropboxusercontent.com/s/abc/logo.png", "dropbox", "logo.png"),
        (
            "https://drive.google.com/file/d/1AbC/view?usp=sharing",
            "google_drive",
            "Google Drive file",
        ),
        ("https://drive.google.com/open?id=1AbC", "google_drive", "Google Drive file"),
        ("https://drive.google.com/drive/folders/1AbC", "google_drive", "Google Drive folder"),
        (
            "https://docs.google.com/document/d/1AbC/edit?usp=sharing",
            "google_drive",
            "Google Docs document",
        ),
        (
            "https://docs.google.com/spreadsheets/d/1AbC/edit#gid=0",
            "google_drive",
            "Google Sheets spreadsheet",
        ),
        ("https://1drv.ms/w/s!AbCdEf", "onedrive", "OneDrive file"),
        ("https://onedrive.live.com/redir?resid=ABC!123", "onedrive", "OneDrive file"),
        (
            "https://contoso-my.sharepoint.com/:w:/g/personal/bob/EabC?e=x",
            "onedrive",
            "OneDrive file",
        ),
    ],
)
def test_cloud_drive_share_links_are_recognised(url, provider, title):
    found = cloud_file(url)
    assert found is not None
    assert (found.provider, found.title) == (provider, title)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.dropbox.com/",
        "https://www.dropbox.com/pricing",
        "https://drive.google.com/",
        "https://docs.google.com/",
        "https://example.com/s/abc/file.pdf",
        "https://dropbox.com.evil.example/s/abc/file.pdf",
        "https://evil.example/?u=https://www.dropbox.com/s/a/b.pdf",
        "ftp://www.dropbox.com/s/abc/file.pdf",
        "https://sharepoint.com.evil.example/:w:/g/x",
        "http://[::1",
    ],
)
def test_other_urls_are_plain_links(url):
    assert cloud_file(url) is None


def test_urls_come_from_the_rendered_message_never_from_code():
    html = (
        '<p>see <a href="https://example.com/a?x=1&amp;y=2">a</a> and '
        '<a href="https://example.com/a?x=1&amp;y=2">again</a> '
        '<a href="mailto:bob@example.com">mail</a> <code>https://in.code/</code></p>'
    )
    assert extract_urls(html) == ["https://example.com/a?x=1&y=2"]


def test_links_are_recorded_when_a_message_is_sent(room, bob):
    message = do_send_message(
        bob,
        room=room,
        body="spec at https://example.com/spec and www.example.org, not `https://code.example`",
    )
    links = list(Link.objects.filter(message=message).order_by("id"))
    assert [link.url for link in links] == ["https://example.com/spec", "http://www.example.org"]
    assert {link.sender_id for link in links} == {bob.pk}
    assert all(link.created == message.created for link in links)
    assert not any(link.provider for link in links)


def test_editing_a_message_updates_its_links(room, bob):
    message = do_send_message(bob, room=room, body="https://a.example/ and https://b.example/")
    do_edit_message(bob, message=message, body="https://b.example/ and https://c.example/")
    urls = sorted(Link.objects.filter(message=message).values_list("url", flat=True))
    assert urls == ["https://b.example/", "https://c.example/"]


def test_a_cloud_drive_link_shows_as_a_file_card(room, alice, bob):
    url = "https://www.dropbox.com/scl/fi/xyz123/Brief.pdf?rlkey=abc&dl=0"
    sent = client_for(bob).post(f"/rooms/{room.pk}/messages/", {"body": f"brief: {url}"})

    html = sent.content.decode()
    assert 'class="file-card cloud" data-provider="dropbox"' in html
    assert '<span class="file-name">Brief.pdf</span>' in html
    link = Link.objects.get()
    assert (link.provider, link.title) == ("dropbox", "Brief.pdf")


def test_the_links_panel_lists_urls_newest_first_with_who_and_the_message(room, alice, bob):
    first = do_send_message(bob, room=room, body="https://first.example/")
    do_send_message(alice, room=room, body="https://drive.google.com/file/d/1AbC/view")
    gone = do_send_message(bob, room=room, body="https://deleted.example/")
    do_delete_message(bob, message=gone)

    html = client_for(alice).get(f"/rooms/{room.pk}/files/").content.decode()

    assert html.index("Google Drive file · Google Drive") < html.index("https://first.example/")
    assert "Bob Jones" in html
    assert first.get_absolute_url().replace("&", "&amp;") in html
    assert "deleted.example" not in html


def test_links_are_paged(room, alice, bob):
    for n in range(25):
        do_send_message(bob, room=room, body=f"https://example.com/{n:02d}")
    client = client_for(alice)

    panel = client.get(f"/rooms/{room.pk}/files/").content.decode()
    more = client.get(f"/rooms/{room.pk}/links/?page=2").content.decode()

    assert "https://example.com/24" in panel
    assert "https://example.com/04" not in panel
    assert "More links" in panel
    assert "https://example.com/04" in more
    assert "https://example.com/00" in more
    assert "More links" not in more
