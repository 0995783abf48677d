"""Requests served under ASGI (Uvicorn) run their middleware and view in one thread hand-off,
and get every middleware's work as under WSGI."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import HttpCommunicator

from messages_site.asgi import application, django_asgi_app

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_middleware_chain_is_built_for_one_thread():
    # Django's own ASGI handler builds an async chain: back to the event loop between the
    # middleware and the view.
    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)


HOST = (b"host", b"127.0.0.1")


def get(path: str) -> HttpCommunicator:
    return HttpCommunicator(application, "GET", path, headers=[HOST])


def headers(response: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in response["headers"]:
        found.setdefault(name.decode().lower(), []).append(value.decode())
    return found


async def test_a_page_gets_every_middleware_s_work():
    response = await get("/accounts/login/").get_response()
    assert response["status"] == 200
    sent = headers(response)
    assert sent["x-frame-options"] == ["DENY"]  # XFrameOptionsMiddleware
    assert any(cookie.startswith("csrftoken=") for cookie in sent["set-cookie"])  # CSRF
    assert b"<form" in response["body"]


async def test_refusals_are_answered_as_under_wsgi():
    missing = await get("/no/such/page/").get_response()
    assert missing["status"] == 404
    forged = await HttpCommunicator(
        application,
        "POST",
        "/accounts/login/",
        body=b"username=a&password=b",
        headers=[HOST, (b"content-type", b"application/x-www-form-urlencoded")],
    ).get_response()
    assert forged["status"] == 403  # no CSRF token
