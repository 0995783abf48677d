"""Message search: the query language, permissions, the index, ranking and snippets.

Runs on the database in use: SQLite FTS5 by default, PostgreSQL with DATABASE_URL. Both
backends must give the same answers. alice, bob and carol share "Design"; mallory is outside.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import befriend
from moderation.actions import do_block_user
from rooms import search
from rooms.actions import (
    do_archive_room,
    do_create_room,
    do_delete_message,
    do_edit_message,
    do_leave_room,
    do_mark_read,
    do_open_direct,
    do_send_message,
    do_set_hidden,
)
from rooms.models import Attachment, Message, RoomKind
from rooms.search import (
    BAD_DATE,
    EMPTY_QUERY,
    SearchError,
    Term,
    date_tokens,
    parse_query,
    search_messages,
    snippet,
)


def say(user, room, body: str, *, at: datetime | None = None) -> Message:
    message = do_send_message(user, room=room, body=body)
    if at is not None:
        Message.objects.filter(pk=message.pk).update(created=at)
    return message


def found(user, query: str) -> list[str]:
    return [result.message.body for result in search_messages(user, query)]


def error_for(user, query: str) -> str:
    with pytest.raises(SearchError) as error:
        search_messages(user, query)
    return str(error.value)


def group(owner, *members, title: str):
    befriend(owner, *members)
    return do_create_room(owner, kind=RoomKind.GROUP, title=title, members=members)


# The parser (no database) --------------------------------------------------------------------


def test_bare_words_are_separate_terms():
    assert parse_query("final Invoice").terms == [Term(("final",)), Term(("invoice",))]


def test_quotes_make_a_phrase_and_an_unclosed_quote_runs_to_the_end():
    assert parse_query('"final invoice" paid').terms == [
        Term(("final", "invoice")),
        Term(("paid",)),
    ]
    assert parse_query('paid "final invoice from:bob').terms == [
        Term(("paid",)),
        Term(("final", "invoice", "from", "bob")),
    ]


def test_star_makes_a_prefix():
    assert parse_query("inv*").terms == [Term(("inv",), prefix=True)]
    assert parse_query('"final inv"*').terms == [Term(("final", "inv"), prefix=True)]


def test_operators_take_bare_or_quoted_values():
    query = parse_query('from:bob FROM:"Bob  Jones" in:"Room for Project A" in:design')
    assert query.people == ["bob", "Bob Jones"]
    assert query.rooms == ["Room for Project A", "design"]
    assert query.terms == []


def test_words_with_a_colon_that_are_not_operators_are_searched_as_words():
    assert parse_query("https://example.com/a re:invoice").terms == [
        Term(("https", "example", "com", "a")),
        Term(("re", "invoice")),
    ]


@pytest.mark.parametrize(
    "query",
    ["before:2015-05-01", "after:20151340", "before:", "after:2015050", "before:20150230"],
)
def test_a_bad_date_says_how_dates_are_written(query):
    with pytest.raises(SearchError, match=f"^{BAD_DATE}$"):
        parse_query(query)


@pytest.mark.parametrize("query", ["", "   ", '""', "*", "?!", '" "'])
def test_an_empty_query_is_refused_with_a_hint(query):
    with pytest.raises(SearchError) as error:
        parse_query(query)
    assert str(error.value) == EMPTY_QUERY
    assert "from:bob" in EMPTY_QUERY


@pytest.mark.parametrize(
    "query, message",
    [
        ("has:pictures", "has: can be has:link or has:file."),
        ("is:read", "is: can be is:unread."),
        ("from:", "Write whose messages after from:"),
        ('in:""', "Write a room after in:"),
        ("i*", "Put at least 2 letters before *"),
        ("x" * 501, "A search can be at most 500 characters."),
    ],
)
def test_a_query_that_cannot_run_says_why(query, message):
    with pytest.raises(SearchError) as error:
        parse_query(query)
    assert str(error.value).startswith(message)


def test_date_tokens_cover_a_range_with_the_fewest_periods():
    start = datetime(2015, 4, 30, 22, tzinfo=UTC)
    assert date_tokens(start, datetime(2015, 5, 1, 22, tzinfo=UTC)) == ["d20150430", "d20150501"]
    assert date_tokens(None, datetime(2015, 5, 2, tzinfo=UTC)) == [
        *["k0", "k1", "e200", "y2010", "y2011", "y2012", "y2013", "y2014"],
        *["m201501", "m201502", "m201503", "m201504", "d20150501"],
    ]
    assert date_tokens(None, None) == [f"k{n}" for n in range(10)]


# Words, phrases, prefixes --------------------------------------------------------------------


def test_a_word_matches_whole_words_in_any_case(room, alice, bob):
    say(bob, room, "Invoice attached")
    say(bob, room, "two invoices and a reinvoice")
    say(bob, room, "where is the INVOICE?")
    assert found(alice, "invoice") == ["where is the INVOICE?", "Invoice attached"]
    assert found(alice, "INVOICE") == ["where is the INVOICE?", "Invoice attached"]


def test_every_word_must_match_anywhere(room, alice, bob):
    say(bob, room, "final invoice")
    say(bob, room, "the invoice is not final yet")
    say(bob, room, "final answer")
    assert found(alice, "final invoice") == ["final invoice", "the invoice is not final yet"]


def test_a_quoted_phrase_matches_the_words_together_in_order(room, alice, bob):
    say(bob, room, "here is the final invoice.")
    say(bob, room, "the invoice is final")
    say(bob, room, "final, invoice")
    assert found(alice, '"final invoice"') == ["final, invoice", "here is the final invoice."]


def test_an_unclosed_quote_searches_the_rest_as_a_phrase(room, alice, bob):
    say(bob, room, "send the final invoice today")
    say(bob, room, "final: the invoice")
    assert found(alice, 'send "final invoice') == ["send the final invoice today"]


def test_a_star_matches_words_that_start_so(room, alice, bob):
    say(bob, room, "inventory is low")
    say(bob, room, "Invoice attached")
    say(bob, room, "we reinvented it")
    assert found(alice, "inv*") == ["Invoice attached", "inventory is low"]
    assert found(alice, '"attached inv"* ') == []
    assert found(alice, '"invoice att"*') == ["Invoice attached"]


def test_punctuation_splits_words_the_same_way_everywhere(room, alice, bob):
    say(bob, room, "pricing is at https://example.com/pricing-2025 now")
    say(bob, room, "write to support@example.org, e-mail or call 3.5 times")
    say(bob, room, "snake_case and Café crème")
    assert found(alice, "pricing") == ["pricing is at https://example.com/pricing-2025 now"]
    assert found(alice, "example.com") == ["pricing is at https://example.com/pricing-2025 now"]
    assert found(alice, "2025") == ["pricing is at https://example.com/pricing-2025 now"]
    assert found(alice, "mail") == ["write to support@example.org, e-mail or call 3.5 times"]
    assert found(alice, "e-mail 3.5") == ["write to support@example.org, e-mail or call 3.5 times"]
    assert found(alice, "case café") == ["snake_case and Café crème"]
    assert found(alice, "cafe") == []


@pytest.mark.parametrize(
    "query",
    [
        "invoice OR secret",
        "NEAR(invoice secret)",
        "invoice & !secret | secret",
        "meta:r1",
        "body:secret",
        "secret'",
        "'secret'",
        "(secret",
        "^secret",
        "-invoice",
        "secret:*",
        '"secret" * "',
        "\\ secret",
        "invoice\x00",
        "x² 日本語 🙂 ǅ",
    ],
)
def test_search_syntax_typed_by_a_user_is_only_words(room, alice, bob, mallory, query):
    say(bob, room, "secret invoice")
    for user in (alice, mallory):
        results = search_messages(user, query)
        assert all(r.message.room_id == room.pk for r in results)
    assert search_messages(mallory, query) == []


# Operators -----------------------------------------------------------------------------------


def test_from_takes_a_username_or_a_display_name(room, alice, bob, carol):
    say(bob, room, "report from bob")
    say(carol, room, "report from carol")
    assert found(alice, "report from:bob") == ["report from bob"]
    assert found(alice, 'report from:"bob jones"') == ["report from bob"]
    assert found(alice, "from:BOB") == ["report from bob"]


def test_two_froms_mean_either(room, alice, bob, carol):
    say(alice, room, "report from alice")
    say(bob, room, "report from bob")
    say(carol, room, "report from carol")
    assert found(alice, 'report from:bob from:"Carol Chen"') == [
        "report from carol",
        "report from bob",
    ]


def test_from_someone_unknown_says_no_one_is_called_that(room, alice):
    assert error_for(alice, "from:zed") == 'No one called "zed".'
    assert error_for(alice, 'report from:bob from:"Bob Jonas"') == 'No one called "Bob Jonas".'


def test_in_takes_a_room_title_in_any_case(room, alice, bob):
    other = group(alice, bob, title="Room for Project A")
    say(bob, room, "plan in design")
    say(bob, other, "plan in project a")
    assert found(alice, "plan in:design") == ["plan in design"]
    assert found(alice, 'plan in:"room for project a"') == ["plan in project a"]
    assert found(alice, 'in:design in:"Room for Project A"') == [
        "plan in project a",
        "plan in design",
    ]


def test_a_direct_room_is_in_the_other_person(room, alice, bob, carol):
    direct = do_open_direct(alice, other=bob)
    say(bob, direct, "plan between us")
    say(bob, room, "plan for everyone")
    assert found(alice, "plan in:bob") == ["plan between us"]
    assert found(alice, 'plan in:"Bob Jones"') == ["plan between us"]
    assert found(bob, "plan in:alice") == ["plan between us"]
    assert error_for(carol, "plan in:bob") == 'No room called "bob".'


def test_in_a_room_you_are_not_in_says_no_room_is_called_that(room, alice, mallory, dave):
    group(mallory, dave, title="Secret")
    assert error_for(alice, "in:secret") == 'No room called "secret".'
    assert error_for(alice, "in:nowhere") == 'No room called "nowhere".'


def test_before_and_after_are_inclusive_days(room, alice, bob):
    say(bob, room, "note april", at=datetime(2015, 4, 30, 12, tzinfo=UTC))
    say(bob, room, "note may first", at=datetime(2015, 5, 1, 23, 59, tzinfo=UTC))
    say(bob, room, "note may second", at=datetime(2015, 5, 2, 0, 0, tzinfo=UTC))
    say(bob, room, "note june", at=datetime(2015, 6, 1, 0, 0, tzinfo=UTC))
    assert found(alice, "note before:20150501") == ["note may first", "note april"]
    assert found(alice, "note after:20150502") == ["note june", "note may second"]
    assert found(alice, "after:20150501 before:20150601") == [
        "note june",
        "note may second",
        "note may first",
    ]
    assert found(alice, "note after:20150602") == []
    assert found(alice, "note after:20150501 before:20150430") == []


def test_days_are_days_in_the_users_time_zone(room, alice, bob):
    # 02:00 UTC on 2 May is still 1 May, 22:00, in New York.
    say(bob, room, "late note", at=datetime(2015, 5, 2, 2, 0, tzinfo=UTC))
    assert found(alice, "late before:20150501") == []
    with timezone.override("America/New_York"):
        assert found(alice, "late before:20150501") == ["late note"]
        assert found(alice, "late after:20150502") == []


def test_dates_at_the_ends_of_the_calendar_are_fine(room, alice, bob):
    say(bob, room, "note")
    with timezone.override("Pacific/Kiritimati"):  # UTC+14
        assert found(alice, "note after:00010101 before:99991231") == ["note"]
    with timezone.override("Pacific/Pago_Pago"):  # UTC-11
        assert found(alice, "note after:00010101 before:99991231") == ["note"]
        assert found(alice, "note after:99991231") == []
        assert found(alice, "note before:00010101") == []


def test_has_link_finds_messages_with_a_web_link(room, alice, bob):
    say(bob, room, "see https://example.com/page")
    say(bob, room, "old HTTP://EXAMPLE.ORG")
    say(bob, room, "http is a protocol")
    say(bob, room, "ftp://files.example.com")
    assert found(alice, "has:link") == ["old HTTP://EXAMPLE.ORG", "see https://example.com/page"]
    assert found(alice, "see has:link") == ["see https://example.com/page"]


def attach(message: Message, name: str, *, deleted: bool = False) -> None:
    """A file attached to `message`, as the files actions leave a finished upload."""
    Attachment.objects.create(
        room_id=message.room_id,
        message=message,
        uploader_id=message.sender_id,
        name=name,
        size=4,
        content_type="application/pdf",
        deleted=timezone.now() if deleted else None,
    )


def test_has_file_finds_messages_with_a_file_or_a_cloud_drive_file(room, alice, bob):
    attach(say(bob, room, "report attached"), "report.pdf")
    attach(say(bob, room, "old report"), "old.pdf", deleted=True)
    say(bob, room, "report on https://www.dropbox.com/s/abc123/plan.pdf?dl=0")
    say(bob, room, "report.pdf is coming")
    assert found(alice, "has:file") == [
        "report on https://www.dropbox.com/s/abc123/plan.pdf?dl=0",
        "report attached",
    ]
    assert found(alice, "attached has:file") == ["report attached"]


def test_is_unread_finds_what_the_user_has_not_read_from_others(room, alice, bob, carol):
    read = say(bob, room, "news one")
    do_mark_read(alice, room=room, up_to=read.pk)
    say(alice, room, "news from me")
    say(bob, room, "news two")
    assert found(alice, "news is:unread") == ["news two"]
    assert found(alice, "is:unread") == ["news two"]
    assert found(bob, "is:unread") == []
    assert found(carol, "news is:unread") == ["news two", "news from me", "news one"]


def test_operators_combine_with_each_other_and_with_words(room, alice, bob, carol):
    other = group(alice, bob, carol, title="Launch")
    say(bob, room, "budget draft https://docs.example.com", at=datetime(2020, 1, 5, tzinfo=UTC))
    say(bob, room, "budget final", at=datetime(2021, 3, 1, tzinfo=UTC))
    say(carol, room, "budget final for real", at=datetime(2021, 3, 2, tzinfo=UTC))
    say(bob, other, "budget final elsewhere", at=datetime(2021, 3, 3, tzinfo=UTC))
    assert found(alice, "budget from:bob in:design") == [
        "budget final",
        "budget draft https://docs.example.com",
    ]
    assert found(alice, '"budget final" from:bob after:20210101') == [
        "budget final elsewhere",
        "budget final",
    ]
    assert found(alice, "bud* in:design has:link before:20201231") == [
        "budget draft https://docs.example.com"
    ]
    assert found(alice, 'final from:carol from:bob in:launch in:"design"') == [
        "budget final elsewhere",
        "budget final for real",
        "budget final",
    ]
    assert found(alice, "budget from:bob in:launch before:20210302") == []


def test_a_query_of_operators_only_is_fine(room, alice, bob):
    say(bob, room, "hello")
    say(alice, room, "hi")
    assert found(alice, "from:bob") == ["hello"]
    assert found(alice, "in:design") == ["hi", "hello"]


# What a user may find ------------------------------------------------------------------------


def test_an_outsider_finds_nothing(room, bob, mallory):
    say(bob, room, "secret plan")
    assert found(mallory, "secret") == []
    assert found(mallory, "from:bob") == []


def test_after_leaving_a_room_its_messages_are_not_found(room, alice, bob):
    say(alice, room, "secret plan")
    assert found(bob, "secret") == ["secret plan"]
    do_leave_room(bob, room=room)
    assert found(bob, "secret") == []
    assert found(bob, "from:alice") == []
    assert error_for(bob, "in:design") == 'No room called "design".'


def test_someone_blocked_does_not_find_what_the_blocker_sends_them(room, alice, bob):
    direct = do_open_direct(alice, other=bob)
    say(alice, direct, "secret between us")
    say(alice, room, "secret for the group")
    do_block_user(alice, blocked=bob)
    assert found(bob, "secret") == ["secret for the group"]
    assert error_for(bob, "in:alice") == 'No room called "alice".'
    assert found(alice, "secret") == ["secret for the group", "secret between us"]


def test_hidden_and_archived_rooms_are_searched(room, alice, bob):
    say(bob, room, "secret plan")
    do_set_hidden(alice, room=room, hidden=True)
    assert found(alice, "secret") == ["secret plan"]
    do_archive_room(alice, room=room)
    assert found(alice, "secret in:design") == ["secret plan"]


def test_deleted_messages_are_never_found(room, alice, bob):
    message = say(bob, room, "secret plan")
    do_delete_message(bob, message=message)
    assert found(alice, "secret") == []
    assert found(alice, "from:bob") == []


def test_an_edit_is_searched_by_its_new_words(room, alice, bob):
    message = say(bob, room, "the old plan")
    do_edit_message(bob, message=message, body="the new plan")
    assert found(alice, "old") == []
    assert found(alice, "new") == ["the new plan"]


def test_the_database_keeps_the_index_whoever_writes(room, alice, bob):
    message = Message.objects.create(room=room, sender=bob, body="written directly", body_html="")
    assert found(alice, "directly") == ["written directly"]
    Message.objects.filter(pk=message.pk).update(body="changed directly")
    assert found(alice, "written") == []
    assert found(alice, "changed") == ["changed directly"]
    Message.objects.filter(pk=message.pk).delete()
    assert found(alice, "directly") == []


@pytest.mark.django_db(transaction=True)
def test_migrate_restores_the_index_after_django_rebuilds_the_message_table(room, alice, bob):
    if connection.vendor == "sqlite":
        # What an AddField with a default does on SQLite: the triggers go with the old table.
        with connection.schema_editor() as editor:
            editor._remake_table(Message)
    say(bob, room, "written in between")
    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)
    assert found(alice, "between") == ["written in between"]
    say(bob, room, "written after")
    assert found(alice, "after") == ["written after"]


def test_search_never_builds_a_tsvector_from_the_body(room, alice, bob):
    say(bob, room, "final invoice")
    with CaptureQueriesContext(connection) as queries:
        assert found(alice, 'final inv* "final invoice" from:bob after:20000101') == [
            "final invoice"
        ]
    assert not any("to_tsvector" in query["sql"] for query in queries.captured_queries)


def test_a_word_too_common_for_the_index_is_found_the_same(room, alice, bob, monkeypatch):
    # PostgreSQL checks a word in over 5% of messages row by row instead of in the GIN index.
    monkeypatch.setattr(search, "_lexeme_shares", lambda: {"the": 0.6, "plan": 0.3})
    say(bob, room, "the plan")
    say(bob, room, "the other plan", at=datetime(2015, 5, 1, tzinfo=UTC))
    say(bob, room, "a rare plan")
    assert found(alice, "the plan") == ["the plan", "the other plan"]
    assert found(alice, '"the plan"') == ["the plan"]
    assert found(alice, "rare plan") == ["a rare plan"]
    assert found(alice, "the before:20150501") == ["the other plan"]


def test_common_means_in_a_twentieth_of_messages_and_phrases_are_rarer():
    shares = {"the": 0.6, "to": 0.4, "invoice": 0.01, "today": 0.04, "tomorrow": 0.02}
    assert search._is_common(Term(("the",)), shares)
    assert not search._is_common(Term(("invoice",)), shares)
    assert not search._is_common(Term(("zebra",)), shares)
    assert search._is_common(Term(("to",), prefix=True), shares)  # to, today, tomorrow
    assert not search._is_common(Term(("to", "the")), shares)  # 0.6 * 0.4 / 12 = 2%


# Ranking and snippets ------------------------------------------------------------------------


def test_best_matches_come_first_then_the_newest(room, alice, bob):
    say(bob, room, "invoice and invoice again")
    say(bob, room, "an invoice")
    say(bob, room, "one more invoice")
    assert found(alice, "invoice") == [
        "invoice and invoice again",
        "one more invoice",
        "an invoice",
    ]


def test_words_standing_together_rank_above_scattered_ones(room, alice, bob):
    say(bob, room, "final invoice")
    say(bob, room, "invoice: final")
    assert found(alice, "final invoice") == ["final invoice", "invoice: final"]


def test_a_result_has_room_sender_and_marked_snippet(room, alice, bob):
    message = say(bob, room, "Final <b>invoice</b> & the final invoice")
    (result,) = search_messages(alice, '"final invoice"')
    assert result.message == message
    assert result.room == room
    assert result.room_name == "Design"
    assert result.sender == bob
    assert result.snippet == (
        "Final &lt;b&gt;invoice&lt;/b&gt; &amp; the <mark>final invoice</mark>"
    )


def test_a_direct_room_is_named_after_the_other_person(alice, bob):
    befriend(alice, bob)
    direct = do_open_direct(alice, other=bob)
    say(bob, direct, "psst")
    (result,) = search_messages(alice, "psst")
    assert result.room_name == "Bob Jones"


def test_a_snippet_cannot_carry_markup_from_the_message():
    html = snippet('<script>alert("x")</script> <mark>invoice', [Term(("invoice",))])
    assert html == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &lt;mark&gt;<mark>invoice</mark>"
    )


def test_a_long_message_is_cut_around_its_first_match():
    text = " ".join(["word"] * 200) + " the final invoice " + " ".join(["more"] * 200)
    html = snippet(text, [Term(("invoice",))])
    assert html.startswith("…word ")
    assert html.endswith("…")
    assert "the final <mark>invoice</mark>" in html
    assert len(html) < 300


def test_results_are_limited_and_the_query_count_is_fixed(
    room, alice, bob, django_assert_num_queries
):
    say(bob, room, "ping 0")
    search_messages(alice, "warm up")  # PostgreSQL reads word statistics once in a while
    # The user's rooms, the newest matches, the messages shown.
    with django_assert_num_queries(3):
        assert len(search_messages(alice, "ping")) == 1
    for n in range(1, 60):
        say(bob, room, f"ping {n}")
    with django_assert_num_queries(3):
        results = search_messages(alice, "ping")
    assert len(results) == 50
    assert results[0].message.body == "ping 59"
