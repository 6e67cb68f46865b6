"""Diagnosis: the audit of application data checks (which fields were compared and which differed; never values)."""
VERSION = 4


def apply(db) -> None:
    # One row per completed check. chat_key is the keyed hash of the chat (Helpdesk.chat_key); the rate
    # limit counts these rows. Field names only: what the user typed is never stored.
    db.execute(
        """CREATE TABLE datacheck_audit (
            id INTEGER PRIMARY KEY,
            chat_key TEXT NOT NULL,
            employee_id TEXT,
            fields_compared TEXT NOT NULL,   -- comma-separated: name,rrn,agency_code,phone,email
            fields_differing TEXT NOT NULL,  -- the subset that differed from the record
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX datacheck_audit_chat ON datacheck_audit (chat_key, at)")
