"""The Telegram adapter's bookkeeping: the durable update inbox, the sent-replies log, blocked chats."""
VERSION = 3


def apply(db) -> None:
    # Every update is written here before its offset is confirmed to Telegram (or before the webhook
    # answers 200), and marked done once handled; what is not done is replayed at start.
    db.execute(
        """CREATE TABLE tg_inbox (
            update_id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL DEFAULT '',   -- the chat it belongs to: replay keeps per-chat order
            payload TEXT,                        -- the update as JSON; cleared once handled (personal data)
            state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'planned', 'done', 'failed')),
            received_at TEXT NOT NULL,
            handled_at TEXT,
            incident TEXT                        -- the incident id shown to the user when handling failed
        )"""
    )
    db.execute("CREATE INDEX tg_inbox_state ON tg_inbox (state, update_id)")
    # The replies an update produced, stored with the core's state change in one transaction, and how far
    # each got: a replay sends only what is not recorded as sent.
    db.execute(
        """CREATE TABLE tg_replies (
            update_id INTEGER NOT NULL,
            idx INTEGER NOT NULL,                -- position in the core's list of replies
            chat_id TEXT NOT NULL,
            payload TEXT,                        -- the Reply as JSON until it is sent; then cleared
            parts_sent INTEGER NOT NULL DEFAULT 0,  -- a long text goes out in parts (4,096 characters each)
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'blocked', 'failed')),
            message_ids TEXT NOT NULL DEFAULT '',   -- Telegram message ids of the parts, comma-separated
            updated_at TEXT NOT NULL,
            PRIMARY KEY (update_id, idx)
        )"""
    )
    # Chats where Telegram answered 403 (the user blocked the bot); cleared when the user is back.
    db.execute(
        """CREATE TABLE tg_blocked (
            chat_id TEXT PRIMARY KEY,
            blocked_at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )"""
    )
