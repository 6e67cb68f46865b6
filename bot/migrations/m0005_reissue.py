"""Reissue (재발급): drafts of the chat flow, submitted requests, their status history, reference counters."""
VERSION = 5


def apply(db) -> None:
    # The durable copy of a chat's reissue flow (the `conversations` row says which flow is active; this one
    # survives another flow taking over the chat for a while, e.g. the mismatched-data check).
    db.execute(
        """CREATE TABLE reissue_drafts (
            chat_id TEXT PRIMARY KEY,
            token TEXT NOT NULL,           -- in every button of this draft: stale buttons are recognised
            step TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}',
            started_at TEXT NOT NULL,
            touched_at TEXT NOT NULL,      -- last thing the user did in the flow (idle time counts from here)
            reminded_at TEXT               -- the one 24-hour reminder was sent (reset when the user comes back)
        )"""
    )
    db.execute(
        """CREATE TABLE reissue_requests (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,      -- R-2026-000123
            submit_key TEXT NOT NULL UNIQUE,  -- the draft's token: a double tap on 제출 finds the same row
            employee_id TEXT NOT NULL,
            chat_id TEXT NOT NULL,         -- the chat that submitted (told about decisions)
            channel TEXT NOT NULL DEFAULT 'console',
            reason TEXT NOT NULL,
            certificate_id INTEGER,        -- registry row (NULL: the user's certificate is not in the registry)
            cert_serial TEXT,
            cert_usage TEXT,
            cert_not_after TEXT,
            revoke_method TEXT,            -- self (gpki.go.kr) | document (공문) | already | NULL (not needed)
            phone_masked TEXT,             -- 010-****-**78: the full number is never stored
            status TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'issued', 'cancelled')),
            status_note TEXT,              -- why it was rejected / cancelled
            decided_by TEXT,
            new_certificate_id INTEGER,    -- the certificate that closed it (status issued)
            form_data TEXT NOT NULL DEFAULT '{}',  -- what the 신청서 shows, as submitted (no 주민등록번호, no full phone)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX reissue_requests_holder ON reissue_requests (employee_id, status)")
    db.execute("CREATE INDEX reissue_requests_status ON reissue_requests (status, created_at)")
    db.execute(
        """CREATE TABLE reissue_history (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES reissue_requests (id) ON DELETE CASCADE,
            from_status TEXT,
            to_status TEXT NOT NULL,
            actor TEXT NOT NULL,           -- user | cli | staff:<telegram user id> | system
            note TEXT,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX reissue_history_request ON reissue_history (request_id, id)")
    db.execute(
        """CREATE TABLE reissue_counters (
            year INTEGER PRIMARY KEY,
            last INTEGER NOT NULL
        )"""
    )
