-- Version 4: offline push. A device's registration (the token its maker's push service gave it), and the
-- outbox: one row per push to send, written in the commit of the message it announces.
CREATE TABLE push_devices (
    uid      INTEGER NOT NULL,
    device   TEXT NOT NULL,
    -- Tencent's platform name (iPhone, Android, ...).
    platform TEXT NOT NULL,
    provider TEXT NOT NULL,
    token    TEXT NOT NULL,
    app_id   TEXT,
    lang     TEXT,
    -- When the device was last connected (unix seconds).
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (uid, device)
) WITHOUT ROWID;
-- A token belongs to one device: registering it elsewhere finds the old row.
CREATE INDEX push_devices_token ON push_devices (provider, token);

CREATE TABLE push_outbox (
    id          INTEGER PRIMARY KEY,
    uid         INTEGER NOT NULL,
    device      TEXT NOT NULL,
    -- The message (its rowid, and its time: a rowid freed by a purge may be taken by a later message).
    msg_id      INTEGER NOT NULL,
    msg_time    INTEGER NOT NULL,
    queued_at   INTEGER NOT NULL,
    -- Due at this time (unix seconds), unless held by a worker until lease_until.
    next_at     INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_outbox_due ON push_outbox (next_at);
CREATE INDEX push_outbox_device ON push_outbox (uid, device);
