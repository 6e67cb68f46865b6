"""The registry: holders, their certificates, CRLs seen, one-time link codes and link attempts."""
VERSION = 2


def apply(db) -> None:
    db.execute(
        """CREATE TABLE holders (
            employee_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            agency TEXT NOT NULL DEFAULT '',
            agency_code TEXT NOT NULL DEFAULT '',
            department TEXT NOT NULL DEFAULT '',
            rrn_hmac TEXT,                 -- HMAC(HELPDESK_PII_KEY) of 주민등록번호, never the number
            phone_hmac TEXT,               -- HMAC of the normalised mobile number
            phone_last4 TEXT,
            email TEXT NOT NULL DEFAULT '',
            chat_id TEXT UNIQUE,           -- linked chat (NULL: not linked)
            linked_at TEXT,
            reminders_muted INTEGER NOT NULL DEFAULT 0,
            unreachable_at TEXT,           -- the bot was blocked (403) at this time
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE certificates (
            id INTEGER PRIMARY KEY,
            employee_id TEXT REFERENCES holders (employee_id) ON DELETE SET NULL,
            issuer TEXT NOT NULL,
            serial TEXT NOT NULL,          -- uppercase hex, even length, as X.509 tools print it
            subject TEXT NOT NULL DEFAULT '',
            scheme TEXT NOT NULL DEFAULT 'GPKI',
            kind TEXT NOT NULL DEFAULT 'unknown',   -- sig | env | unknown
            usage TEXT NOT NULL DEFAULT 'unknown',  -- personal-admin, personal-public, org, ... (design.md)
            policy_oid TEXT,
            not_before TEXT NOT NULL,      -- ISO-8601, Asia/Seoul
            not_after TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'valid',   -- valid | revoked | suspended (expiry is derived from not_after)
            revoked_at TEXT,
            revocation_reason TEXT,
            source TEXT NOT NULL DEFAULT 'csv',     -- csv | file | crl | demo | ...
            status_source TEXT,            -- where the status was last confirmed: csv, crl:<url>, ocsp:<url>
            status_checked_at TEXT,        -- when it was last confirmed
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (issuer, serial)
        )"""
    )
    db.execute("CREATE INDEX certificates_holder ON certificates (employee_id)")
    db.execute("CREATE INDEX certificates_not_after ON certificates (not_after)")
    db.execute("CREATE INDEX certificates_serial ON certificates (serial)")
    db.execute(
        """CREATE TABLE crls (
            id INTEGER PRIMARY KEY,
            issuer TEXT NOT NULL,
            crl_number TEXT,
            this_update TEXT,
            next_update TEXT,
            entries INTEGER NOT NULL,
            source TEXT NOT NULL,
            imported_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE link_codes (
            code_hash TEXT PRIMARY KEY,    -- HMAC of the code; the code itself is never stored
            employee_id TEXT NOT NULL REFERENCES holders (employee_id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            used_by_chat TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE link_attempts (
            id INTEGER PRIMARY KEY,
            chat_id TEXT NOT NULL,
            ok INTEGER NOT NULL,
            at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX link_attempts_chat ON link_attempts (chat_id, at)")
