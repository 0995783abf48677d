"""Staff deactivating or deleting a person in Django admin: that person's open tabs close at
once (their sessions end at the next request), nobody else's."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from accounts.models import User
from conftest import PASSWORD, client_for
from rooms.tests.test_live import connect

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(db):
    root = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    return client_for(root)


def change_form(person: User, **changes) -> dict:
    """The admin change form of `person` as a browser posts it (an unticked box is left out)."""
    form = {
        "username": person.username,
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "display_name": person.display_name,
        "is_active": "on",
        "date_joined_0": person.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": person.date_joined.strftime("%H:%M:%S"),
        **changes,
    }
    return {name: value for name, value in form.items() if value is not None}


async def closed(tab) -> bool:
    assert await tab.receive_json_from(timeout=5) == {"type": "session.ended"}
    return (await tab.receive_output(timeout=5))["code"] == 4403


@database_sync_to_async
def post(client, path: str, data: dict) -> int:
    return client.post(path, data).status_code


async def test_unticking_active_closes_the_person_s_tabs(admin_client, alice, bob):
    bobs, alices = await connect(bob), await connect(alice)
    status = await post(
        admin_client, f"/admin/accounts/user/{bob.pk}/change/", change_form(bob, is_active=None)
    )
    assert status == 302
    assert await closed(bobs)
    assert await alices.receive_nothing(timeout=0.3)
    assert not (await database_sync_to_async(User.objects.get)(pk=bob.pk)).is_active
    await alices.disconnect()


async def test_other_changes_leave_the_tabs_open(admin_client, bob):
    bobs = await connect(bob)
    status = await post(
        admin_client,
        f"/admin/accounts/user/{bob.pk}/change/",
        change_form(bob, display_name="Robert Jones"),
    )
    assert status == 302
    assert await bobs.receive_nothing(timeout=0.3)
    await bobs.disconnect()


async def test_deleting_people_closes_their_tabs(admin_client, alice, bob, carol):
    bobs, carols, alices = await connect(bob), await connect(carol), await connect(alice)
    status = await post(
        admin_client,
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": [bob.pk, carol.pk], "post": "yes"},
    )
    assert status == 302
    assert await closed(bobs)
    assert await closed(carols)
    assert await alices.receive_nothing(timeout=0.3)
    await alices.disconnect()
