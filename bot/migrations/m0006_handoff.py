"""Staff hand-off: tickets, their transcript, staff-chat message links, and the outbox for console chats."""
VERSION = 6


def apply(db) -> None:
    # One row per ticket. The reference shown to people is T-<year>-<id:06d> (bot.handoff.ticket_ref).
    db.execute(
        """CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            chat_id TEXT NOT NULL,          -- the user's chat
            channel TEXT NOT NULL,          -- console | telegram (of the user's chat)
            user_id TEXT NOT NULL DEFAULT '',
            user_name TEXT NOT NULL DEFAULT '',
            category TEXT NOT NULL,         -- key, label in knowledge/messages/handoff.yaml
            summary TEXT NOT NULL DEFAULT '',   -- the user's one line (masked)
            context TEXT NOT NULL DEFAULT '',   -- what the bot knew at opening (staff-chat HTML)
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            opened_at TEXT NOT NULL,
            staff_chat_id TEXT NOT NULL,
            thread_id INTEGER,              -- forum topic in the staff chat (NULL: none yet / no topics)
            topic_mode TEXT NOT NULL DEFAULT '',  -- '' unknown | forum | plain (group without topics)
            staff_message_id INTEGER,       -- the context message in the staff chat (reply target)
            claimed_by TEXT,
            claimed_name TEXT NOT NULL DEFAULT '',
            claimed_at TEXT,
            first_staff_reply_at TEXT,
            last_notified_at TEXT,
            notify_count INTEGER NOT NULL DEFAULT 0,
            unreachable_at TEXT,            -- delivering to the user failed (bot blocked)
            closed_at TEXT,
            closed_by TEXT,                 -- staff | user
            satisfaction INTEGER CHECK (satisfaction BETWEEN 1 AND 5),
            rated_at TEXT
        )"""
    )
    db.execute("CREATE INDEX tickets_chat ON tickets (chat_id, status)")
    db.execute("CREATE INDEX tickets_status ON tickets (status, opened_at)")
    db.execute("CREATE INDEX tickets_thread ON tickets (staff_chat_id, thread_id)")
    # The transcript: everything said in the ticket, both ways (user text masked).
    db.execute(
        """CREATE TABLE ticket_messages (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            direction TEXT NOT NULL CHECK (direction IN ('user', 'staff', 'system')),
            author TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL DEFAULT 'text',  -- text | document | photo | event
            text TEXT NOT NULL DEFAULT '',
            file_name TEXT,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, id)")
    # Messages the bot posted in the staff chat for a ticket: a staff reply to any of them maps to the ticket.
    db.execute(
        """CREATE TABLE ticket_links (
            chat_id TEXT NOT NULL,
            message_id INTEGER NOT NULL,
            ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            PRIMARY KEY (chat_id, message_id)
        )"""
    )
    # Replies for console chats that another process produced (a staff terminal answering a user terminal).
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            chat_id TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            buttons TEXT NOT NULL DEFAULT '[]',  -- JSON [[label, action], ...] rows
            file_name TEXT,
            file_content BLOB,
            file_mime TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            delivered_at TEXT
        )"""
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (chat_id, delivered_at, id)")
    # A ticket's messages for a Telegram staff chat: handlers/staff.py posts them in the ticket's forum topic
    # (creating or recreating it), so they wait apart from the generic outbox.
    db.execute(
        """CREATE TABLE ticket_outbox (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
            chat_id TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            buttons TEXT NOT NULL DEFAULT '[]',
            file_name TEXT,
            file_content BLOB,
            file_mime TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            sent_at TEXT
        )"""
    )
    db.execute("CREATE INDEX ticket_outbox_pending ON ticket_outbox (sent_at, id)")
