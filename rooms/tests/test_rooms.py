from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from conftest import befriend
from rooms.actions import (
    do_create_room,
    do_invite_member,
    do_leave_room,
    do_open_direct,
    do_remove_member,
    do_rename_room,
    do_set_role,
)
from rooms.models import Membership, Role, RoomKind
from rooms.queries import access_room, address_book


def roles(room) -> dict[str, int]:
    return {m.user.username: m.role for m in Membership.objects.filter(room=room)}


def test_creator_is_owner_and_members_join(room, alice, bob, carol):
    assert roles(room) == {"alice": Role.OWNER, "bob": Role.MEMBER, "carol": Role.ADMIN}


@pytest.mark.parametrize("kind", [RoomKind.GROUP, RoomKind.INTERVIEW, RoomKind.CONTRACT])
def test_every_kind_of_room_can_be_created(alice, bob, kind):
    befriend(alice, bob)
    created = do_create_room(alice, kind=kind, title="Project A", members=[bob])
    assert created.kind == kind
    assert created.title == "Project A"


def test_contract_room_carries_whether_it_is_active(alice, bob):
    befriend(alice, bob)
    contract = do_create_room(
        alice, kind=RoomKind.CONTRACT, title="Site", members=[bob], contract_active=True
    )
    group = do_create_room(
        alice, kind=RoomKind.GROUP, title="G", members=[bob], contract_active=True
    )
    assert contract.contract_active is True
    assert group.contract_active is False


def test_room_needs_a_title(alice, bob):
    befriend(alice, bob)
    with pytest.raises(ValidationError, match="needs a title"):
        do_create_room(alice, kind=RoomKind.GROUP, title="   ", members=[bob])


def test_unknown_kind_is_refused(alice):
    with pytest.raises(ValidationError, match="Unknown room kind"):
        do_create_room(alice, kind="party", title="x", members=[])


def test_cannot_create_room_with_strangers(alice, mallory):
    with pytest.raises(ValidationError, match="not in your address book"):
        do_create_room(alice, kind=RoomKind.GROUP, title="x", members=[mallory])


def test_direct_room_is_reused_from_either_side(alice, bob):
    befriend(alice, bob)
    befriend(bob, alice)
    first = do_open_direct(alice, other=bob)
    again = do_open_direct(alice, other=bob)
    from_bob = do_open_direct(bob, other=alice)
    assert first.pk == again.pk == from_bob.pk
    assert first.kind == RoomKind.DIRECT
    assert set(roles(first)) == {"alice", "bob"}


def test_direct_room_is_exactly_two_people(alice, bob, carol):
    befriend(alice, bob, carol)
    with pytest.raises(ValidationError, match="exactly two"):
        do_create_room(alice, kind=RoomKind.DIRECT, members=[bob, carol])


def test_owner_renames_room(room, alice):
    do_rename_room(alice, room=room, title="  Design   team ")
    room.refresh_from_db()
    assert room.title == "Design team"


def test_admin_cannot_rename_room(room, carol):
    with pytest.raises(PermissionDenied):
        do_rename_room(carol, room=room, title="Mine now")


def test_admin_invites_from_address_book(room, carol, dave):
    befriend(carol, dave)
    do_invite_member(carol, room=room, user=dave)
    assert roles(room)["dave"] == Role.MEMBER


def test_member_cannot_invite(room, bob, dave):
    befriend(bob, dave)
    with pytest.raises(PermissionDenied):
        do_invite_member(bob, room=room, user=dave)
    assert "dave" not in roles(room)


def test_only_people_in_address_book_can_be_invited(room, alice, mallory):
    with pytest.raises(ValidationError, match="address book"):
        do_invite_member(alice, room=room, user=mallory)


def test_inviting_a_member_twice_is_refused(room, alice, bob):
    with pytest.raises(ValidationError, match="already in this room"):
        do_invite_member(alice, room=room, user=bob)


def test_nobody_can_be_invited_into_a_direct_room(alice, bob, carol):
    befriend(alice, bob, carol)
    direct = do_open_direct(alice, other=bob)
    with pytest.raises(ValidationError, match="two people"):
        do_invite_member(alice, room=direct, user=carol)


def test_outsider_cannot_invite_and_room_stays_hidden(room, mallory, dave):
    befriend(mallory, dave)
    with pytest.raises(Http404):
        do_invite_member(mallory, room=room, user=dave)


def test_admin_removes_member_but_not_admin_or_owner(room, alice, bob, carol, dave):
    befriend(alice, dave)
    do_invite_member(alice, room=room, user=dave)
    do_set_role(alice, room=room, user=dave, role=Role.ADMIN)
    do_remove_member(carol, room=room, user=bob)
    with pytest.raises(PermissionDenied):
        do_remove_member(carol, room=room, user=dave)
    with pytest.raises(PermissionDenied):
        do_remove_member(carol, room=room, user=alice)
    assert roles(room) == {"alice": Role.OWNER, "carol": Role.ADMIN, "dave": Role.ADMIN}


def test_owner_removes_anyone(room, alice, carol):
    do_remove_member(alice, room=room, user=carol)
    assert "carol" not in roles(room)


def test_member_cannot_remove(room, bob, carol):
    with pytest.raises(PermissionDenied):
        do_remove_member(bob, room=room, user=carol)


def test_owner_makes_member_admin_and_back(room, alice, bob):
    do_set_role(alice, room=room, user=bob, role=Role.ADMIN)
    assert roles(room)["bob"] == Role.ADMIN
    do_set_role(alice, room=room, user=bob, role=Role.MEMBER)
    assert roles(room)["bob"] == Role.MEMBER


def test_admin_cannot_change_roles(room, carol, bob):
    with pytest.raises(PermissionDenied):
        do_set_role(carol, room=room, user=bob, role=Role.ADMIN)


def test_role_cannot_be_owner(room, alice, bob):
    with pytest.raises(ValidationError):
        do_set_role(alice, room=room, user=bob, role=Role.OWNER)


def test_anyone_may_leave(room, bob):
    do_leave_room(bob, room=room)
    with pytest.raises(Http404):
        access_room(bob, room.pk)


def test_leaving_owner_hands_room_to_longest_standing_admin(room, alice, carol, dave):
    befriend(alice, dave)
    do_invite_member(alice, room=room, user=dave)
    do_set_role(alice, room=room, user=dave, role=Role.ADMIN)
    do_leave_room(alice, room=room)
    assert roles(room) == {"bob": Role.MEMBER, "carol": Role.OWNER, "dave": Role.ADMIN}


def test_leaving_owner_without_admins_hands_room_to_longest_standing_member(room, alice, carol):
    do_set_role(alice, room=room, user=carol, role=Role.MEMBER)
    do_leave_room(alice, room=room)
    assert roles(room) == {"bob": Role.OWNER, "carol": Role.MEMBER}


def test_address_book_has_roommates_and_added_people(room, alice, bob, dave, mallory):
    befriend(bob, dave)
    assert set(address_book(bob).values_list("username", flat=True)) == {"alice", "carol", "dave"}
    assert "mallory" not in address_book(alice).values_list("username", flat=True)
