"""Search: messages with a small query language, and people & rooms by name.

`search_messages(user, query)` parses the query (`parse_query`, no database), resolves the
names in from: and in:, asks the index of the database in use for the newest matches in the
user's rooms, ranks them and highlights them. One parser, two backends:

- PostgreSQL: the stored `search_vector` tsvector column (migration 0003) with its GIN index,
  matched with `to_tsquery('simple', ...)`; the body is never turned into a tsvector here.
- SQLite: the FTS5 table `rooms_message_search`, whose `meta` column also holds room, sender
  and date tokens so that filters are matched inside the index, newest first.

Both read a word as a run of letters and digits, case-insensitively, as `WORD` does here, so
ranking and highlighting in Python agree with what the database matched.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.models import User
from moderation.queries import direct_rooms_blocked_for

from .models import Membership, Message, Room, RoomKind
from .queries import address_book

RESULT_LIMIT = 50
# "Best first" ranks the newest this-many matches, so that a word in half of all messages
# costs about what a rare one does: the database stops after this many, newest first.
CANDIDATE_LIMIT = 100
MAX_QUERY_LENGTH = 500
SNIPPET_LENGTH = 220
# Up to this many rooms to search (in:), SQLite narrows by room inside its FTS index.
FEW_ROOMS = 10
PEOPLE_LIMIT = 20

EMPTY_QUERY = (
    'Type a word to search for. Add more words to narrow it down, "quotes" for an exact '
    "phrase, or from:bob, in:design, before:20150501, after:20150601."
)
BAD_DATE = "Dates are written yyyyMMdd, like 20150501"

WORD = re.compile(r"[^\W_]+")
_OPERATOR = re.compile(r"([A-Za-z]+):")
_CHUNK_END = re.compile(r'[\s"]')


class SearchError(ValueError):
    """A query that cannot run; `str(error)` says why, in words for the person who typed it."""


# The query --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word, or a phrase of words that must be adjacent; with `prefix`, the last may go on."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)
    people: list[str] = field(default_factory=list)  # from: (any of them)
    rooms: list[str] = field(default_factory=list)  # in: (any of them)
    after: date | None = None  # inclusive, a day in the user's time zone
    before: date | None = None  # inclusive
    has_file: bool = False
    has_link: bool = False
    unread: bool = False

    @property
    def is_empty(self) -> bool:
        filters = (self.people, self.rooms, self.after, self.before, self.has_file)
        return not self.terms and not any(filters) and not (self.has_link or self.unread)


def parse_query(text: str) -> Query:
    """Read a query; raise SearchError with a message for people when it cannot be read.

    Words (all must match), `word*` for a prefix, "a phrase" (an unclosed quote runs to the
    end), and the operators from:, in:, before:, after:, has: and is:. A word of the form
    `something:else` that is not an operator is searched as words, like a URL.
    """
    text = text.strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"A search can be at most {MAX_QUERY_LENGTH} characters.")
    query = Query()
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text[pos] == '"':
            phrase, pos = _quoted(text, pos)
            star = text.startswith("*", pos)
            pos += star
            _add_words(query, phrase, prefix=star or phrase.rstrip().endswith("*"))
        elif (match := _OPERATOR.match(text, pos)) and match[1].lower() in OPERATORS:
            pos = match.end()
            if text.startswith('"', pos):
                value, pos = _quoted(text, pos)
            else:
                value, pos = _chunk(text, pos)
            OPERATORS[match[1].lower()](query, " ".join(value.split()))
        else:
            chunk, pos = _chunk(text, pos)
            _add_words(query, chunk, prefix=chunk.endswith("*"))
    if query.is_empty:
        raise SearchError(EMPTY_QUERY)
    return query


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The text inside the quote opening at `pos`, and where reading goes on."""
    close = text.find('"', pos + 1)
    if close == -1:
        return text[pos + 1 :], len(text)
    return text[pos + 1 : close], close + 1


def _chunk(text: str, pos: int) -> tuple[str, int]:
    match = _CHUNK_END.search(text, pos)
    end = match.start() if match else len(text)
    return text[pos:end], end


def _add_words(query: Query, raw: str, *, prefix: bool) -> None:
    words = tuple(word.lower() for word in WORD.findall(raw))
    if not words:
        return
    if prefix and len(words[-1]) < 2:
        raise SearchError("Put at least 2 letters before *, like inv*.")
    query.terms.append(Term(words, prefix))


def _from(query: Query, value: str) -> None:
    if not value:
        raise SearchError('Write whose messages after from:, like from:bob or from:"Bob Jones".')
    query.people.append(value)


def _in(query: Query, value: str) -> None:
    if not value:
        raise SearchError('Write a room after in:, like in:design or in:"Room for Project A".')
    query.rooms.append(value)


def _day(value: str) -> date:
    if not re.fullmatch(r"\d{8}", value):
        raise SearchError(BAD_DATE)
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise SearchError(BAD_DATE) from None


def _after(query: Query, value: str) -> None:
    day = _day(value)
    query.after = max(day, query.after or day)


def _before(query: Query, value: str) -> None:
    day = _day(value)
    query.before = min(day, query.before or day)


def _has(query: Query, value: str) -> None:
    if value.lower() == "link":
        query.has_link = True
    elif value.lower() == "file":
        query.has_file = True
    else:
        raise SearchError("has: can be has:link or has:file.")


def _is(query: Query, value: str) -> None:
    if value.lower() != "unread":
        raise SearchError("is: can be is:unread.")
    query.unread = True


OPERATORS: dict[str, Callable[[Query, str], None]] = {
    "from": _from,
    "in": _in,
    "after": _after,
    "before": _before,
    "has": _has,
    "is": _is,
}


# Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    message: Message
    room: Room
    sender: User
    # The room's title, or for a direct room the other person's name.
    room_name: str
    # The message text, escaped, with <mark> around the words that matched.
    snippet: SafeString


@dataclass(frozen=True)
class Plan:
    """What a backend is asked: the newest matches of `terms` passing every filter."""

    terms: list[Term]
    room_ids: list[int]
    sender_ids: list[int] | None = None
    start: datetime | None = None  # created >= start
    end: datetime | None = None  # created < end
    has_link: bool = False
    has_file: bool = False
    unread_for: int | None = None  # the user, when only their unread messages count
    read_up_to: int = 0  # the smallest read pointer among room_ids, for is:unread
    limit: int = CANDIDATE_LIMIT


Candidate = tuple[int, str, datetime]  # id, body, created


def search_messages(user: User, query: str, *, limit: int = RESULT_LIMIT) -> list[SearchResult]:
    """The messages `user` may read that match `query`, best matches first, then newest.

    May read: in a room the user belongs to now (hidden and archived ones too), not deleted.
    Raises SearchError for a query that cannot run. A fixed number of queries.
    """
    parsed = parse_query(query)
    rooms = _my_rooms(user)
    sender_ids = _people_named(parsed.people) if parsed.people else None
    room_ids = _rooms_named(rooms, parsed.rooms) if parsed.rooms else list(rooms)
    if not room_ids:
        return []
    start = _day_start(parsed.after) if parsed.after else None
    end = _day_after(parsed.before) if parsed.before else None
    if start and end and start >= end:
        return []
    plan = Plan(
        terms=parsed.terms,
        room_ids=sorted(room_ids),
        sender_ids=sender_ids,
        start=start,
        end=end,
        has_link=parsed.has_link,
        has_file=parsed.has_file,
        unread_for=user.pk if parsed.unread else None,
        read_up_to=min(rooms[room_id].last_read_id for room_id in room_ids),
        limit=max(CANDIDATE_LIMIT, limit),
    )
    candidates = BACKENDS[connection.vendor](plan)
    best = rank(candidates, parsed.terms)[:limit]
    return _results(rooms, [message_id for message_id, _, _ in best], parsed.terms)


@dataclass
class _MyRoom:
    last_read_id: int
    kind: str
    title: str
    # For a direct room: the other person, with only the fields that name them.
    partner: User | None = None

    @property
    def name(self) -> str:
        if self.kind != RoomKind.DIRECT:
            return self.title
        return self.partner.name if self.partner else "Direct conversation"

    def is_called(self, name: str) -> bool:
        """in:`name`: a room by its title, a direct room by the other person's names."""
        if self.partner is not None:
            return name in (self.partner.username.lower(), self.partner.display_name.lower())
        return self.kind != RoomKind.DIRECT and self.title.lower() == name


def _my_rooms(user: User) -> dict[int, _MyRoom]:
    """Every room the user is in now and may read, hidden and archived ones too: not a direct
    room whose other member blocked them (as access_membership). Two queries at most."""
    rows = (
        Membership.objects.filter(user_id=user.pk)
        .exclude(room_id__in=direct_rooms_blocked_for(user.pk))
        .values_list("room_id", "last_read_id", "room__kind", "room__title")
    )
    rooms = {room_id: _MyRoom(read, kind, title) for room_id, read, kind, title in rows}
    direct = [room_id for room_id, room in rooms.items() if room.kind == RoomKind.DIRECT]
    partners = (
        Membership.objects.filter(room_id__in=direct)
        .exclude(user_id=user.pk)
        .values_list(
            "room_id", "user__username", "user__display_name", "user__first_name", "user__last_name"
        )
    )
    for room_id, username, display_name, first_name, last_name in partners:
        rooms[room_id].partner = User(
            username=username, display_name=display_name, first_name=first_name, last_name=last_name
        )
    return rooms


def _people_named(names: list[str]) -> list[int]:
    """Ids of the people called each name (username or display name); raise for a stranger."""
    wanted = Q()
    for name in names:
        wanted |= Q(username__iexact=name) | Q(display_name__iexact=name)
    people = list(User.objects.filter(wanted).values_list("pk", "username", "display_name"))
    found: set[int] = set()
    for name in names:
        key = name.lower()
        ids = {pk for pk, username, display in people if key in (username.lower(), display.lower())}
        if not ids:
            raise SearchError(f'No one called "{name}".')
        found |= ids
    return sorted(found)


def _rooms_named(rooms: dict[int, _MyRoom], names: list[str]) -> list[int]:
    """The user's rooms called each name; raise for a name that is none of them."""
    found: set[int] = set()
    for name in names:
        ids = {room_id for room_id, room in rooms.items() if room.is_called(name.lower())}
        if not ids:
            raise SearchError(f'No room called "{name}".')
        found |= ids
    return sorted(found)


def _day_start(day: date) -> datetime | None:
    """Midnight starting `day` in the user's time zone; None past the ends of time."""
    try:
        moment = timezone.make_aware(
            datetime.combine(day, time.min), timezone.get_current_timezone()
        )
        moment.astimezone(UTC)
    except OverflowError:
        return None
    return moment


def _day_after(day: date) -> datetime | None:
    try:
        return _day_start(day + timedelta(days=1))
    except OverflowError:
        return None


def _results(rooms: dict[int, _MyRoom], ids: list[int], terms: list[Term]) -> list[SearchResult]:
    messages = Message.objects.filter(pk__in=ids, deleted__isnull=True).select_related(
        "room", "sender"
    )
    by_id = {message.pk: message for message in messages}
    return [
        SearchResult(
            message=message,
            room=message.room,
            sender=message.sender,
            room_name=rooms[message.room_id].name,
            snippet=snippet(message.preview, terms),
        )
        for message in (by_id.get(message_id) for message_id in ids)
        if message is not None  # deleted since the search ran
    ]


# Ranking and highlighting -------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _pattern(term: Term) -> re.Pattern[str]:
    """A regex for `term` that agrees with WORD: whole words, any case, adjacent in a phrase.

    A prefix match runs to the end of its word, so the whole word is marked.
    """
    words = r"[\W_]+".join(re.escape(word) for word in term.words)
    end = r"[^\W_]*" if term.prefix else r"(?![^\W_])"
    return re.compile(rf"(?<![^\W_]){words}{end}", re.IGNORECASE)


def score(text: str, terms: list[Term]) -> int:
    """How well a text matches: occurrences of each term (up to 3), plus 3 when the bare
    words of the query also stand together in it, in the order typed."""
    total = sum(min(len(_pattern(term).findall(text)), 3) for term in terms)
    bare = tuple(t.words[0] for t in terms if len(t.words) == 1 and not t.prefix)
    if len(bare) > 1 and _pattern(Term(bare)).search(text):
        total += 3
    return total


def rank(candidates: list[Candidate], terms: list[Term]) -> list[Candidate]:
    """Best matches first, newest first among equals."""
    return sorted(candidates, key=lambda row: (score(row[1], terms), row[2], row[0]), reverse=True)


def snippet(text: str, terms: list[Term], *, length: int = SNIPPET_LENGTH) -> SafeString:
    """About `length` characters of `text` around its first match, escaped, matches marked."""
    spans = _marked_spans(text, terms)
    start, end = 0, len(text)
    if len(text) > length:
        first = spans[0][0] if spans else 0
        start = max(0, first - length // 4)
        if start:
            space = text.find(" ", start, first)
            start = space + 1 if space != -1 else start
        end = min(len(text), start + length)
        if end < len(text):
            space = text.rfind(" ", max(start, spans[0][1] if spans else start), end)
            end = space if space > start else end
    parts = ["…"] if start else []
    pos = start
    for span_start, span_end in spans:
        span_start, span_end = max(span_start, start), min(span_end, end)
        if span_start >= span_end:
            continue
        parts += [escape(text[pos:span_start]), "<mark>", escape(text[span_start:span_end])]
        parts.append("</mark>")
        pos = span_end
    parts.append(escape(text[pos:end]))
    if end < len(text):
        parts.append("…")
    return mark_safe("".join(parts))  # noqa: S308 - every piece of the text is escaped


def _marked_spans(text: str, terms: list[Term]) -> list[tuple[int, int]]:
    """Character spans of every match, a phrase as one span, overlapping ones merged."""
    spans = sorted(match.span() for term in terms for match in _pattern(term).finditer(text))
    merged: list[tuple[int, int]] = []
    for span_start, span_end in spans:
        if merged and span_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span_end))
        else:
            merged.append((span_start, span_end))
    return merged


# Backends ---------------------------------------------------------------------------------


def _in_list(column: str, values: list[int], params: list) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join(['%s'] * len(values))})"


def _common_filters(plan: Plan, params: list, *, like: str, room: str = "m.room_id") -> list[str]:
    """SQL conditions on rooms_message `m` that both backends check row by row."""
    where = [_in_list(room, plan.room_ids, params), "m.deleted IS NULL"]
    if plan.sender_ids is not None:
        where.append(_in_list("m.sender_id", plan.sender_ids, params))
    if plan.start is not None:
        where.append("m.created >= %s")
        params.append(connection.ops.adapt_datetimefield_value(plan.start))
    if plan.end is not None:
        where.append("m.created < %s")
        params.append(connection.ops.adapt_datetimefield_value(plan.end))
    if plan.has_link:
        where.append(f"(m.body {like} %s OR m.body {like} %s)")
        params += ["%http://%", "%https://%"]
    if plan.has_file:
        # A file attached and not deleted since, or a cloud-drive link shown as a file card.
        where.append(
            "(EXISTS (SELECT 1 FROM rooms_attachment a WHERE a.message_id = m.id "
            "AND a.deleted IS NULL) OR EXISTS (SELECT 1 FROM rooms_link l "
            "WHERE l.message_id = m.id AND l.provider <> ''))"
        )
    if plan.unread_for is not None:
        where.append(
            "m.sender_id <> %s AND EXISTS (SELECT 1 FROM rooms_membership mb WHERE "
            "mb.room_id = m.room_id AND mb.user_id = %s AND mb.last_read_id < m.id)"
        )
        params += [plan.unread_for, plan.unread_for]
    return where


def _fetch(sql: str, params: list) -> list[Candidate]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(pk, body, _as_datetime(created)) for pk, body, created in cursor.fetchall()]


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps UTC datetimes as text
        value = parse_datetime(value).replace(tzinfo=UTC)
    return value


# PostgreSQL: words go into a tsquery as quoted lexemes, so nothing typed is tsquery syntax.


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery(terms: list[Term], *, has_link: bool = False) -> str:
    parts = []
    for term in terms:
        lexemes = [_lexeme(word) for word in term.words]
        if term.prefix:
            lexemes[-1] += ":*"
        parts.append(" <-> ".join(lexemes))
    if has_link:
        parts.append("('http' | 'https')")
    return " & ".join(f"({part})" for part in parts)


def postgres_candidates(plan: Plan) -> list[Candidate]:
    """The newest matches, leaving PostgreSQL's planner only the plans that can be good.

    Its costs for big bitmaps are too low: left alone it ANDs a GIN bitmap of a word in half
    of all messages, or of every message in the user's 100 rooms, with a small one, and reads
    hundreds of thousands of index entries to save a few hundred rows. So a word that common
    (by the column's statistics) is checked on each row that the other conditions find,
    newest first, and all of a user's rooms are checked as `room_id + 0`, which no index
    serves, unless a prefix is looked up. Rarer words, in:, from: and dates still use their
    indexes.
    """
    shares = _lexeme_shares()
    looked_up = [term for term in plan.terms if not _is_common(term, shares)]
    checked = [term for term in plan.terms if _is_common(term, shares)]
    params: list = []
    where = []
    if looked_up or plan.has_link:
        where.append("m.search_vector @@ to_tsquery('simple', %s)")
        params.append(tsquery(looked_up, has_link=plan.has_link))
    if checked:
        where.append("(m.search_vector @@ to_tsquery('simple', %s)) IS TRUE")
        params.append(tsquery(checked))
    # A prefix (`inv*`) may stand for many words and match thousands of messages all over the
    # table: ANDing its bitmap with the rooms' (message_room_id) visits a tenth of the rows.
    broad = any(term.prefix for term in looked_up)
    room = "m.room_id" if len(plan.room_ids) <= FEW_ROOMS or broad else "m.room_id + 0"
    where += _common_filters(plan, params, like="ILIKE", room=room)
    if plan.unread_for is not None:
        where.append("m.id > %s")
        params.append(plan.read_up_to)
    params.append(plan.limit)
    # Only fixed SQL is formatted in; every value is a parameter.
    sql = f"SELECT m.id, m.body, m.created FROM rooms_message m WHERE {' AND '.join(where)}"  # noqa: S608
    if looked_up or plan.has_link:
        # OFFSET 0 plans the match on its own: all matches of the rarer words through the GIN
        # index, then the newest. Else, misjudging a phrase as 50 times more common than it
        # is, the planner walks the date index through every message looking for them.
        sql = f"SELECT * FROM ({sql} OFFSET 0) m"  # noqa: S608
    return _fetch(f"{sql} ORDER BY m.created DESC, m.id DESC LIMIT %s", params)


# A word in at least this share of messages is too common to look up in the GIN index.
COMMON_SHARE = 0.05
WORDS_PER_MESSAGE = 12
# The statistics change slowly (ANALYZE), so each process reads them at most this often.
STATISTICS_SECONDS = 300
_shares: dict[str, tuple[float, dict[str, float]]] = {}


def _lexeme_shares() -> dict[str, float]:
    """Share of messages holding each of the most common words, from ANALYZE's statistics."""
    read_at, shares = _shares.get(connection.alias, (0.0, {}))
    if monotonic() - read_at < STATISTICS_SECONDS:
        return shares
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lexeme, share FROM pg_stats s, unnest("
            "s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(lexeme, share) "
            "WHERE s.tablename = 'rooms_message' AND s.attname = 'search_vector' "
            "AND u.lexeme IS NOT NULL AND u.share >= %s",
            [COMMON_SHARE / 10],
        )
        shares = dict(cursor.fetchall())
    _shares[connection.alias] = (monotonic(), shares)
    return shares


def _is_common(term: Term, shares: dict[str, float]) -> bool:
    """Whether `term` is likely in COMMON_SHARE of messages or more.

    A phrase is rarer than its words: as if they fell independently in a message of
    WORDS_PER_MESSAGE words, it is in about (share of each word) / WORDS_PER_MESSAGE of the
    messages per word after the first.
    """

    def share(word: str, prefix: bool) -> float:
        if prefix:
            return sum(value for lexeme, value in shares.items() if lexeme.startswith(word))
        return shares.get(word, 0.0)

    last = len(term.words) - 1
    estimate = 1.0
    for n, word in enumerate(term.words):
        estimate *= share(word, term.prefix and n == last) / (WORDS_PER_MESSAGE if n else 1)
    return estimate >= COMMON_SHARE


# SQLite: every word is a quoted FTS5 string, so nothing typed is FTS5 syntax.


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _any_of(tokens: Iterable[str]) -> str:
    return "(" + " OR ".join(_fts_string(token) for token in tokens) + ")"


def fts5_match(plan: Plan) -> str:
    """The MATCH expression: the words in `body`, and the filters that narrow well in `meta`.

    The user's own rooms stay a SQL condition unless there are a few of them (in:) or nothing
    else to match: FTS5 steps every branch of an OR at each match, so 100 rooms there cost more
    than checking the room of each match.
    """
    body = []
    for term in plan.terms:
        body.append(_fts_string(" ".join(term.words)) + (" *" if term.prefix else ""))
    if plan.has_link:
        body.append(_any_of(["http", "https"]))
    parts = [f"body : ({' AND '.join(body)})"] if body else []
    if plan.sender_ids is not None:
        parts.append("meta : " + _any_of(f"u{user_id}" for user_id in plan.sender_ids))
    if plan.start is not None or plan.end is not None:
        parts.append("meta : " + _any_of(date_tokens(plan.start, plan.end)))
    if len(plan.room_ids) <= FEW_ROOMS or not parts:
        parts.append("meta : " + _any_of(f"r{room_id}" for room_id in plan.room_ids))
    return " AND ".join(parts)


def sqlite_candidates(plan: Plan) -> list[Candidate]:
    params: list = [fts5_match(plan)]
    where = ["rooms_message_search MATCH %s"]
    where += _common_filters(plan, params, like="LIKE")
    if plan.unread_for is not None:
        where.append("s.rowid > %s")
        params.append(plan.read_up_to)
    params.append(plan.limit)
    # CROSS JOIN keeps the index outermost: it yields rowids newest first and stops at LIMIT.
    sql = (
        "SELECT m.id, m.body, m.created FROM rooms_message_search s "
        "CROSS JOIN rooms_message m ON m.id = s.rowid WHERE "
    )
    return _fetch(f"{sql}{' AND '.join(where)} ORDER BY s.rowid DESC LIMIT %s", params)


# A date token names a UTC period, as the SQLite triggers write them: k2 (years 2000-2999),
# c20 (2000-2099), e201 (2010-2019), y2015, m201505, d20150501.
# (letter, years in the period, digits of the year in the token)
_YEAR_LEVELS = (("k", 1000, 1), ("c", 100, 2), ("e", 10, 3), ("y", 1, 4))
_FIRST_DAY, _LAST_DAY = date(1, 1, 1), date(9999, 12, 31)


def date_tokens(start: datetime | None, end: datetime | None) -> list[str]:
    """The fewest date tokens covering every UTC day that meets [start, end)."""
    first = start.astimezone(UTC).date() if start else _FIRST_DAY
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date() if end else _LAST_DAY
    tokens = []
    day = first
    while day <= last:
        token, period_end = _largest_period(day, last)
        tokens.append(token)
        if period_end == _LAST_DAY:
            break
        day = period_end + timedelta(days=1)
    return tokens


def _largest_period(day: date, last: date) -> tuple[str, date]:
    """The largest period starting on `day` and ending by `last`: its token and last day."""
    if day.month == 1 and day.day == 1:
        for letter, years, digits in _YEAR_LEVELS:
            # Year 1 opens the first period of every length (there is no year 0).
            if day.year % years == 0 or day.year == 1:
                period_end = date(day.year - day.year % years + years - 1, 12, 31)
                if period_end <= last:
                    return f"{letter}{day.year:04d}"[: digits + 1], period_end
    if day.day == 1:
        period_end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if period_end <= last:
            return f"m{day:%Y%m}", period_end
    return f"d{day:%Y%m%d}", day


BACKENDS: dict[str, Callable[[Plan], list[Candidate]]] = {
    "postgresql": postgres_candidates,
    "sqlite": sqlite_candidates,
}


# People & Rooms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PeopleAndRooms:
    rooms: list[Membership]  # the user's group rooms by title, hidden and archived ones too
    people: list[User]  # people in the user's address book


def search_people_and_rooms(user: User, text: str) -> PeopleAndRooms:
    text = " ".join(text.split())
    if not text:
        raise SearchError("Type part of a name, a username or a room title.")
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"A search can be at most {MAX_QUERY_LENGTH} characters.")
    rooms = (
        Membership.objects.filter(user_id=user.pk, room__title__icontains=text)
        .exclude(room__kind=RoomKind.DIRECT)
        .select_related("room")
        .order_by("-room__last_activity", "-room_id")
    )
    people = address_book(user).filter(
        Q(display_name__icontains=text) | Q(username__icontains=text)
    )
    return PeopleAndRooms(rooms=list(rooms[:PEOPLE_LIMIT]), people=list(people[:PEOPLE_LIMIT]))
