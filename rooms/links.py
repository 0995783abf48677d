"""URLs shared in messages: found in the rendered message, and told apart when they are share
links to a file in a cloud drive (Dropbox, Google Drive, OneDrive), which show as file cards.

Links are read from `body_html`, the message as shown, so a URL inside code is not a link here
either, and only what the formatter linked (http, https) is listed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

MAX_URL_LENGTH = 2000
MAX_LINKS_PER_MESSAGE = 50


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def extract_urls(body_html: str) -> list[str]:
    """The http(s) URLs linked in a rendered message, each once, in order of appearance."""
    parser = _AnchorParser()
    parser.feed(body_html)
    parser.close()
    seen: dict[str, None] = {}
    for href in parser.hrefs:
        if len(href) > MAX_URL_LENGTH or urlsplit(href).scheme.lower() not in ("http", "https"):
            continue
        seen.setdefault(href, None)
        if len(seen) == MAX_LINKS_PER_MESSAGE:
            break
    return list(seen)


@dataclass(frozen=True)
class CloudFile:
    provider: str  # a models.CloudProvider value
    title: str


_GOOGLE_DOCS = {
    "document": "Google Docs document",
    "spreadsheets": "Google Sheets spreadsheet",
    "presentation": "Google Slides presentation",
    "forms": "Google Forms form",
    "drawings": "Google Drawings drawing",
}


def _last_segment(path: str) -> str:
    return unquote(posixpath.basename(path.rstrip("/")))[:255]


def _dropbox(host: str, path: str) -> CloudFile | None:
    if host == "db.tt":
        return CloudFile("dropbox", "Dropbox file")
    if host not in ("dropbox.com", "dl.dropboxusercontent.com", "dl.dropbox.com"):
        return None
    parts = [p for p in path.split("/") if p]
    # /s/<id>/<name>, /scl/fi/<id>/<name>, /sh/... and /scl/fo/... (folders), /l/... (old links)
    if parts[:1] == ["s"] and len(parts) >= 3 or parts[:2] == ["scl", "fi"] and len(parts) >= 4:
        return CloudFile("dropbox", _last_segment(path))
    if parts[:1] == ["sh"] or parts[:2] == ["scl", "fo"]:
        name = _last_segment(path) if len(parts) >= 3 else ""
        return CloudFile("dropbox", name or "Dropbox folder")
    if parts[:1] == ["l"] or host != "dropbox.com":
        return CloudFile("dropbox", _last_segment(path) or "Dropbox file")
    return None


def _google(host: str, path: str, query: str) -> CloudFile | None:
    parts = [p for p in path.split("/") if p]
    if host == "drive.google.com":
        if parts[:2] == ["file", "d"] and len(parts) >= 3:
            return CloudFile("google_drive", "Google Drive file")
        if parts[:2] == ["drive", "folders"] or "folders" in parts:
            return CloudFile("google_drive", "Google Drive folder")
        if parts[:1] in (["open"], ["uc"]) and parse_qs(query).get("id"):
            return CloudFile("google_drive", "Google Drive file")
        return None
    if host == "docs.google.com" and parts and parts[0] in _GOOGLE_DOCS and "d" in parts:
        return CloudFile("google_drive", _GOOGLE_DOCS[parts[0]])
    return None


def _onedrive(host: str, path: str) -> CloudFile | None:
    if host == "1drv.ms" and path.strip("/"):
        return CloudFile("onedrive", "OneDrive file")
    if host == "onedrive.live.com" and path.strip("/"):
        return CloudFile("onedrive", "OneDrive file")
    # OneDrive for Business share links: https://<tenant>-my.sharepoint.com/:w:/g/personal/...
    if host.endswith(".sharepoint.com") and path.startswith("/:"):
        return CloudFile("onedrive", "OneDrive file")
    return None


def cloud_file(url: str) -> CloudFile | None:
    """What a share link to a file in a cloud drive points at, or None for any other URL."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = host.removeprefix("www.")
    return (
        _dropbox(host, parts.path)
        or _google(host, parts.path, parts.query)
        or _onedrive(host, parts.path)
    )
