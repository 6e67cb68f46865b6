"""Expiry reminders: the sending log (exactly one row per certificate and step).

Due-selection needs no index of its own: it walks `certificates_not_after` (m0002) over the next few weeks,
and each candidate costs a seek in `certificates_holder` (newer certificate?), the holder's primary key and
this table's UNIQUE index (already sent?). bench/bench_reminders.py measures it."""
VERSION = 7


def apply(db) -> None:
    # One row per (holder, certificate, expiry, step), written *before* the Bot API call and updated after it.
    # The expiry is part of the key so that a corrected not_after of the same certificate starts afresh.
    #   sending  claimed by attempt `attempt_id`; its request has not gone out whole yet
    #   written  the request's body is going out (so it may reach Telegram); the answer is awaited
    #   sent     Telegram accepted it (message_id)
    #   blocked  403: the holder blocked the bot (holders.unreachable_at is set in the same transaction)
    #   failed   another refusal (e.g. 400 chat not found): `error` says which
    #   unknown  went out, but no answer came (timeout, or the process died): never sent again
    # A claim that did not deliver (429, 5xx, no connection, a crash while `sending`) is deleted and retried.
    # See bot/reminders.py.
    db.execute(
        """CREATE TABLE reminder_log (
            id INTEGER PRIMARY KEY,
            employee_id TEXT NOT NULL,
            serial TEXT NOT NULL,
            step INTEGER NOT NULL,          -- days before expiry (30, 14, 7, 1, 0)
            not_after TEXT NOT NULL,        -- the certificate's expiry when the reminder was sent
            chat_id TEXT NOT NULL,
            attempt_id TEXT NOT NULL,       -- one per message: the rows of a sig/env pair share it
            state TEXT NOT NULL CHECK (state IN ('sending', 'written', 'sent', 'blocked', 'failed', 'unknown')),
            claimed_at TEXT NOT NULL,
            sent_at TEXT,
            message_id INTEGER,
            error TEXT,
            UNIQUE (employee_id, serial, not_after, step)
        )"""
    )
    db.execute("CREATE INDEX reminder_log_attempt ON reminder_log (attempt_id)")
    db.execute("CREATE INDEX reminder_log_state ON reminder_log (state, claimed_at)")
