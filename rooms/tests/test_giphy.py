"""/giphy with both providers: the built-in library and GIPHY's API on a local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from conftest import client_for
from rooms.actions import do_add_library_gif
from rooms.giphy import GifProviderError, GiphyProvider, LibraryProvider
from rooms.management.commands.seed_demo import animated_gif
from rooms.models import Message

GIPHY_ITEMS = {
    "abc123": {"id": "abc123", "title": "Dancing cat", "url": "https://media.giphy.example/c.gif"},
    "def456": {"id": "def456", "title": "Cat nap", "url": "https://media.giphy.example/n.gif"},
}


def giphy_item(item: dict) -> dict:
    return {
        "id": item["id"],
        "title": item["title"],
        "images": {"fixed_height": {"url": item["url"], "width": "200", "height": "200"}},
    }


class FakeGiphy(BaseHTTPRequestHandler):
    """Speaks the two GIPHY endpoints Parley uses, with GIPHY's response shape."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = parse_qs(url.query)
        if params.get("api_key") != ["test-key"]:
            return self.reply(401, {"message": "Invalid authentication credentials"})
        if url.path == "/v1/gifs/search":
            words = params["q"][0].lower().split()
            found = [
                giphy_item(i)
                for i in GIPHY_ITEMS.values()
                if all(w in i["title"].lower() for w in words)
            ]
            return self.reply(200, {"data": found, "meta": {"status": 200}})
        if url.path.startswith("/v1/gifs/"):
            item = GIPHY_ITEMS.get(url.path.rsplit("/", 1)[1])
            if item is None:
                return self.reply(404, {"data": {}, "meta": {"status": 404}})
            return self.reply(200, {"data": giphy_item(item)})
        self.reply(404, {})

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def giphy_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGiphy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def library(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.GIPHY_API_KEY = ""
    do_add_library_gif(title="Party", keywords="party tada", data=animated_gif(["#f00", "#0f0"]))
    do_add_library_gif(title="Party cat", keywords="party cat", data=animated_gif(["#00f"]))


def test_library_search_matches_title_and_keywords(library):
    provider = LibraryProvider()
    assert [g.title for g in provider.search("party", limit=10)] == ["Party", "Party cat"]
    assert [g.title for g in provider.search("CAT party", limit=10)] == ["Party cat"]
    assert provider.search("dog", limit=10) == []


def test_library_refuses_files_that_are_not_gifs(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ValidationError, match="not a readable GIF"):
        do_add_library_gif(title="x", keywords="x", data=b"<svg onload=alert(1)>")


def test_giphy_provider_searches_and_fetches_by_id(giphy_server):
    provider = GiphyProvider(api_key="test-key", base_url=giphy_server)
    found = provider.search("cat", limit=10)
    assert [g.id for g in found] == ["abc123", "def456"]
    assert found[0].url == "https://media.giphy.example/c.gif"
    assert provider.get("def456").title == "Cat nap"
    assert provider.get("nope") is None
    assert provider.get("../etc") is None


def test_giphy_provider_reports_failures_clearly(giphy_server):
    wrong_key = GiphyProvider(api_key="wrong", base_url=giphy_server)
    with pytest.raises(GifProviderError, match="not answering"):
        wrong_key.search("cat", limit=5)
    nobody_home = GiphyProvider(api_key="test-key", base_url="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(GifProviderError):
        nobody_home.search("cat", limit=5)


def test_choose_shuffle_send_with_library(room, bob, library):
    client = client_for(bob)
    url = reverse("room_giphy", args=[room.pk])
    first = client.get(url, {"q": "party"}).content.decode()
    shuffled = client.get(url, {"q": "party", "shuffle": 1}).content.decode()
    assert 'alt="Party"' in first and 'alt="Party cat"' in shuffled
    gif_id = shuffled.split('data-gif="')[1].split('"')[0]
    response = client.post(url, {"q": "party", "gif": gif_id})
    assert response.status_code == 201
    message = Message.objects.get()
    assert message.body == "/giphy party"
    assert message.gif_url == reverse("gif_file", args=[int(gif_id)])
    assert client.get(message.gif_url)["Content-Type"] == "image/gif"


def test_choose_and_send_with_giphy(room, bob, settings, giphy_server):
    settings.GIPHY_API_KEY = "test-key"
    settings.GIPHY_API_URL = giphy_server
    client = client_for(bob)
    url = reverse("room_giphy", args=[room.pk])
    assert "Dancing cat" in client.get(url, {"q": "dancing"}).content.decode()
    client.post(url, {"q": "dancing", "gif": "abc123"})
    assert Message.objects.get().gif_url == "https://media.giphy.example/c.gif"


def test_no_gifs_says_so(room, bob, library):
    page = client_for(bob).get(reverse("room_giphy", args=[room.pk]), {"q": "walrus"})
    assert "No GIFs for “walrus”" in page.content.decode()


@pytest.mark.parametrize("params", [{"q": ""}, {"q": "x" * 51}, {"q": "cat", "shuffle": -1}])
def test_bad_giphy_query_is_400(room, bob, library, params):
    response = client_for(bob).get(reverse("room_giphy", args=[room.pk]), params)
    assert response.status_code == 400


def test_sending_an_unknown_gif_posts_nothing(room, bob, library):
    response = client_for(bob).post(
        reverse("room_giphy", args=[room.pk]), {"q": "party", "gif": "99999"}
    )
    assert response.status_code == 400
    assert "no longer available" in response.content.decode()
    assert not Message.objects.exists()


def test_outsider_cannot_use_giphy_in_room(room, mallory, library):
    client = client_for(mallory)
    url = reverse("room_giphy", args=[room.pk])
    assert client.get(url, {"q": "party"}).status_code == 404
    assert client.post(url, {"q": "party", "gif": "1"}).status_code == 404
    assert not Message.objects.exists()
