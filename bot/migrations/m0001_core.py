"""Core tables: settings, conversation state, turn log, question log, feedback."""
VERSION = 1


def apply(db) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # One active flow per chat (clarification, diagnosis, reissue, ticket, ...): step and JSON data.
    db.execute(
        """CREATE TABLE conversations (
            chat_id TEXT PRIMARY KEY,
            flow TEXT NOT NULL,
            step TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE chats (
            chat_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            miss_streak INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        )"""
    )
    # Every message in and out, personal data masked; transcripts for staff hand-off.
    db.execute(
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            chat_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            text TEXT NOT NULL,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX turns_chat ON turns (chat_id, id)")
    db.execute(
        """CREATE TABLE questions (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL,
            question TEXT NOT NULL,
            normalized TEXT NOT NULL,
            action TEXT NOT NULL,
            entry_id TEXT,
            score REAL NOT NULL,
            day TEXT NOT NULL,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX questions_day ON questions (day)")
    db.execute("CREATE INDEX questions_action ON questions (action, normalized)")
    db.execute(
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            value INTEGER NOT NULL CHECK (value IN (-1, 1)),
            day TEXT NOT NULL,
            at TEXT NOT NULL,
            UNIQUE (chat_key, entry_id, day)
        )"""
    )
