from __future__ import annotations

import contextlib
from datetime import date

from django import template

from accounts.models import User

from ..queries import out_of_office_until

register = template.Library()


@register.simple_tag(takes_context=True)
def away_until(context: template.Context, person: User | None) -> date | None:
    """The last day `person` is away while their responder is on.

    One query per person and request, however often their name appears on the page.
    """
    if person is None or not getattr(person, "pk", None):
        return None
    holder = context.get("request") or context.render_context
    known = getattr(holder, "_away_until", None)
    if known is None:
        known = {}
        with contextlib.suppress(AttributeError):
            holder._away_until = known
    if person.pk not in known:
        known[person.pk] = out_of_office_until(person)
    return known[person.pk]
