"""Numbered schema migrations: mNNNN_<name>.py with VERSION and apply(db).

Versions reserved per area so parallel work never collides:
1 core, 2 registry/certificates, 3 telegram inbox/outbox, 4 diagnosis, 5 reissue, 6 handoff, 7 reminders.
Later changes to an area take the next free number above 100 (101, 102, ...).
"""
