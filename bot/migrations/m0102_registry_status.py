"""Registry, second step: where each certificate's status can be re-checked, and the CA certificates
that let `registry refresh` verify CRL signatures and build OCSP requests."""
VERSION = 102


def apply(db) -> None:
    # From the certificate's own CRL distribution point / AIA OCSP entry, when it was imported from a file.
    db.execute("ALTER TABLE certificates ADD COLUMN crl_url TEXT")
    db.execute("ALTER TABLE certificates ADD COLUMN ocsp_url TEXT")
    db.execute(
        """CREATE TABLE ca_certs (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,         -- canonical DN, as certificates.issuer spells it
            fingerprint TEXT NOT NULL UNIQUE,  -- SHA-256 of the DER, hex
            der BLOB NOT NULL,
            not_after TEXT NOT NULL,
            source TEXT NOT NULL,
            added_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX ca_certs_subject ON ca_certs (subject COLLATE NOCASE)")
    db.execute("CREATE INDEX crls_issuer ON crls (issuer, crl_number)")
