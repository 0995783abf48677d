"""GIFs for `/giphy text`: a built-in library by default, GIPHY's API when a key is set.

Both providers answer the same two questions: what matches this text, and what is the GIF with
this id. The id, never a URL from the browser, decides what gets posted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from .models import Gif

logger = logging.getLogger(__name__)
SEARCH_LIMIT = 25


@dataclass(frozen=True)
class GifResult:
    id: str
    title: str
    url: str
    width: int
    height: int


class GifProviderError(Exception):
    """The provider could not be reached or answered nonsense; the message is for people."""


class GifProvider(Protocol):
    name: str

    def search(self, query: str, *, limit: int) -> list[GifResult]: ...

    def get(self, gif_id: str) -> GifResult | None: ...


class LibraryProvider:
    """GIFs staff uploaded in Django admin, matched on title and keywords."""

    name = "library"

    def _result(self, gif: Gif) -> GifResult:
        return GifResult(
            id=str(gif.pk),
            title=gif.title,
            url=reverse("gif_file", args=[gif.pk]),
            width=gif.width,
            height=gif.height,
        )

    def search(self, query: str, *, limit: int) -> list[GifResult]:
        matches = Gif.objects.all()
        for word in query.split():
            matches = matches.filter(Q(keywords__icontains=word) | Q(title__icontains=word))
        return [self._result(gif) for gif in matches[:limit]]

    def get(self, gif_id: str) -> GifResult | None:
        if not gif_id.isdigit():
            return None
        gif = Gif.objects.filter(pk=int(gif_id)).first()
        return self._result(gif) if gif else None


class GiphyProvider:
    """GIPHY's search API (https://developers.giphy.com/docs/api/endpoint#search)."""

    name = "giphy"

    def __init__(self, *, api_key: str, base_url: str, timeout: float = 3.0) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, path: str, params: dict[str, str | int]) -> dict:
        url = f"{self.base_url}{path}?{urlencode({'api_key': self.api_key, **params})}"
        try:
            request = Request(url, headers={"Accept": "application/json"})  # noqa: S310
            with urlopen(request, timeout=self.timeout) as reply:  # noqa: S310 - URL from settings
                return json.load(reply)
        except HTTPError as error:
            if error.code == 404:
                return {}
            logger.warning("GIPHY request failed: %s", error)
            raise GifProviderError("GIPHY is not answering right now; try again.") from None
        except (URLError, TimeoutError, ValueError) as error:
            logger.warning("GIPHY request failed: %s", error)
            raise GifProviderError("GIPHY is not answering right now; try again.") from None

    @staticmethod
    def _result(item: dict) -> GifResult | None:
        try:
            image = item["images"]["fixed_height"]
            url = image["url"]
            if not url.startswith("https://"):
                return None
            return GifResult(
                id=str(item["id"]),
                title=str(item.get("title") or "GIF")[:200],
                url=url,
                width=int(image.get("width") or 0),
                height=int(image.get("height") or 0),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def search(self, query: str, *, limit: int) -> list[GifResult]:
        data = self._call("/v1/gifs/search", {"q": query, "limit": limit, "rating": "g"})
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise GifProviderError("GIPHY answered with something unexpected.")
        return [r for r in (self._result(item) for item in items) if r is not None]

    def get(self, gif_id: str) -> GifResult | None:
        if not gif_id.isalnum():
            return None
        data = self._call(f"/v1/gifs/{quote(gif_id)}", {})
        item = data.get("data") if isinstance(data, dict) else None
        return self._result(item) if isinstance(item, dict) else None


def provider() -> GifProvider:
    if settings.GIPHY_API_KEY:
        return GiphyProvider(api_key=settings.GIPHY_API_KEY, base_url=settings.GIPHY_API_URL)
    return LibraryProvider()
