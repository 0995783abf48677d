"""Reads for safety: who blocked whom, open reports, live contracts."""

from __future__ import annotations

from django.db.models import Q

from rooms.models import Membership, Room, RoomKind, direct_key

from .models import Block


def has_blocked(blocker_id: int, blocked_id: int) -> bool:
    return Block.objects.filter(blocker_id=blocker_id, blocked_id=blocked_id).exists()


def blocked_by(user_id: int) -> list[int]:
    """The people `user_id` has blocked."""
    return list(Block.objects.filter(blocker_id=user_id).values_list("blocked_id", flat=True))


def blockers_of(user_id: int):
    """The people who blocked `user_id`, as a subquery of ids."""
    return Block.objects.filter(blocked_id=user_id).values("blocker_id")


def blocked_list(user_id: int):
    return Block.objects.filter(blocker_id=user_id).select_related("blocked").order_by("-created")


def active_contract_between(a_id: int, b_id: int) -> Room | None:
    return (
        Room.objects.filter(kind=RoomKind.CONTRACT, contract_active=True, memberships__user_id=a_id)
        .filter(memberships__user_id=b_id)
        .first()
    )


def direct_rooms_blocked_for(user_id: int):
    """Direct rooms whose other member has blocked `user_id`, as a subquery of room ids."""
    return Membership.objects.filter(
        room__kind=RoomKind.DIRECT,
        user_id__in=blockers_of(user_id),
        room__memberships__user_id=user_id,
    ).values("room_id")


def is_direct_room_blocked_for(user_id: int, room: Room) -> bool:
    if room.kind != RoomKind.DIRECT:
        return False
    return Membership.objects.filter(
        Q(room=room) & ~Q(user_id=user_id) & Q(user__blocks_made__blocked_id=user_id)
    ).exists()


def direct_room_between(a_id: int, b_id: int) -> Room | None:
    return Room.objects.filter(direct_key=direct_key(a_id, b_id)).first()
