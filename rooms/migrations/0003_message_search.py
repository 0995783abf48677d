"""The message search index, kept current by the database in the same write as the message.

PostgreSQL: a stored generated `tsvector` column (not on the model: Django never writes it),
a GIN index on it, a (created, id) btree so that "newest first" can walk an index and stop
early, whatever date bounds a query has, and statistics for the room filter search uses.

SQLite: a contentless FTS5 table, `rooms_message_search`, fed by triggers. Besides the words of
the body it indexes a `meta` column of tokens for the room, the sender and the UTC day, month,
year, decade, century and millennium of the message, so that in:, from:, before:/after: and
the user's rooms are matched inside the index, newest rowid first, without a scan.
Deleted messages are left out of it.

Both index the body with ASCII punctuation read as spaces, as FTS5's tokenizer and
rooms/search.py do: "example.com/page" is the words example, com and page everywhere.

On SQLite, Django rebuilds rooms_message for many later schema changes (an AddField with a
default, most AlterFields), and dropping the old table drops these triggers with it. So this
module also connects `restore_sqlite_triggers` to post_migrate: after every migrate it puts back
missing triggers and re-indexes. (Migration modules are imported by every migrate run; the
connect could equally live in RoomsConfig.ready().)
"""

from __future__ import annotations

from django.db import connections, migrations
from django.db.models.signals import post_migrate

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


POSTGRES_FORWARD = [
    "ALTER TABLE rooms_message ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    f"(to_tsvector('simple'::regconfig, translate(body, {_literal(PUNCTUATION)}, "
    f"{_literal(' ' * len(PUNCTUATION))}))) STORED",
    "CREATE INDEX rooms_message_search_vector ON rooms_message USING gin (search_vector)",
    "CREATE INDEX rooms_message_created_id ON rooms_message (created, id)",
    # Search filters by all of a user's rooms as `room_id + 0` (no index: a bitmap of every
    # message in 100 rooms costs more than it saves); these statistics keep its estimate right.
    "CREATE STATISTICS rooms_message_room_id_plus_0 ON (room_id + 0) FROM rooms_message",
]
POSTGRES_BACKWARD = [
    "DROP STATISTICS IF EXISTS rooms_message_room_id_plus_0",
    "DROP INDEX IF EXISTS rooms_message_created_id",
    "DROP INDEX IF EXISTS rooms_message_search_vector",
    "ALTER TABLE rooms_message DROP COLUMN IF EXISTS search_vector",
]


def sqlite_meta(row: str) -> str:
    """SQL for the meta tokens of the row `row` (new or old); `created` is UTC text."""
    created = f"{row}.created"
    day = f"substr({created}, 1, 4) || substr({created}, 6, 2) || substr({created}, 9, 2)"
    return (
        f"'r' || {row}.room_id || ' u' || {row}.sender_id"
        f" || ' k' || substr({created}, 1, 1) || ' c' || substr({created}, 1, 2)"
        f" || ' e' || substr({created}, 1, 3) || ' y' || substr({created}, 1, 4)"
        f" || ' m' || substr({created}, 1, 4) || substr({created}, 6, 2) || ' d' || {day}"
    )


def _sqlite_insert(row: str) -> str:
    return (
        f"INSERT INTO rooms_message_search (rowid, body, meta) "
        f"SELECT {row}.id, {row}.body, {sqlite_meta(row)} WHERE {row}.deleted IS NULL;"
    )


def _sqlite_delete(row: str) -> str:
    # Contentless FTS5 forgets a row when given exactly the values it indexed.
    return (
        f"INSERT INTO rooms_message_search (rooms_message_search, rowid, body, meta) "
        f"SELECT 'delete', {row}.id, {row}.body, {sqlite_meta(row)} WHERE {row}.deleted IS NULL;"
    )


SQLITE_TRIGGERS = [
    "CREATE TRIGGER rooms_message_search_insert AFTER INSERT ON rooms_message BEGIN "
    f"{_sqlite_insert('new')} END",
    "CREATE TRIGGER rooms_message_search_delete AFTER DELETE ON rooms_message BEGIN "
    f"{_sqlite_delete('old')} END",
    "CREATE TRIGGER rooms_message_search_update "
    "AFTER UPDATE OF body, room_id, sender_id, created, deleted ON rooms_message BEGIN "
    f"{_sqlite_delete('old')} {_sqlite_insert('new')} END",
]
SQLITE_TRIGGER_NAMES = (
    "rooms_message_search_insert",
    "rooms_message_search_delete",
    "rooms_message_search_update",
)
SQLITE_DROP_TRIGGERS = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGER_NAMES]
SQLITE_REINDEX = [
    "INSERT INTO rooms_message_search (rooms_message_search) VALUES ('delete-all')",
    "INSERT INTO rooms_message_search (rowid, body, meta) "  # noqa: S608 - fixed SQL
    f"SELECT m.id, m.body, {sqlite_meta('m')} FROM rooms_message m WHERE m.deleted IS NULL",
]
SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE rooms_message_search USING fts5("
    "body, meta, content='', columnsize=0, tokenize='unicode61 remove_diacritics 0')",
    *SQLITE_TRIGGERS,
    *SQLITE_REINDEX,
]
SQLITE_BACKWARD = [*SQLITE_DROP_TRIGGERS, "DROP TABLE IF EXISTS rooms_message_search"]

STATEMENTS = {
    "postgresql": (POSTGRES_FORWARD, POSTGRES_BACKWARD),
    "sqlite": (SQLITE_FORWARD, SQLITE_BACKWARD),
}


def _run(schema_editor, direction: int) -> None:
    statements = STATEMENTS.get(schema_editor.connection.vendor)
    if statements is None:
        return
    with schema_editor.connection.cursor() as cursor:
        for sql in statements[direction]:
            # No parameters: the statements contain literal % signs.
            cursor.execute(sql)


def forward(apps, schema_editor) -> None:
    _run(schema_editor, 0)


def backward(apps, schema_editor) -> None:
    _run(schema_editor, 1)


def restore_sqlite_triggers(sender, *, using: str = "default", **kwargs) -> None:
    """Put back index triggers that a rebuild of rooms_message dropped, and re-index."""
    connection = connections[using]
    if connection.vendor != "sqlite" or getattr(sender, "label", None) != "rooms":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT type, name FROM sqlite_master WHERE name = 'rooms_message_search' "
            "OR (type = 'trigger' AND tbl_name = 'rooms_message')"
        )
        present = {name for _, name in cursor.fetchall()}
        if "rooms_message_search" not in present or present.issuperset(SQLITE_TRIGGER_NAMES):
            return
        # Messages written while a trigger was missing are not in the index: rebuild it.
        for sql in [*SQLITE_DROP_TRIGGERS, *SQLITE_TRIGGERS, *SQLITE_REINDEX]:
            cursor.execute(sql)


post_migrate.connect(restore_sqlite_triggers, dispatch_uid="rooms_message_search_triggers")


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0003_message_kind"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
