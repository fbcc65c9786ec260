-- Offline push: devices' registrations, the outbox (one row per push, written in the message's commit and
-- claimed with FOR UPDATE SKIP LOCKED under a lease, so each push is sent by one node), do-not-disturb.

CREATE TABLE push_devices (
    uid      BIGINT NOT NULL,
    device   TEXT NOT NULL,
    platform TEXT NOT NULL,
    provider TEXT NOT NULL,
    token    TEXT NOT NULL,
    app_id   TEXT,
    lang     TEXT,
    seen_at  BIGINT NOT NULL,
    PRIMARY KEY (uid, device)
);
CREATE INDEX push_devices_token ON push_devices (provider, token);

CREATE TABLE push_outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid         BIGINT NOT NULL,
    device      TEXT NOT NULL,
    msg_id      BIGINT NOT NULL,
    msg_time    BIGINT NOT NULL,
    queued_at   BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX push_outbox_due ON push_outbox (next_at);
CREATE INDEX push_outbox_device ON push_outbox (uid, device);

CREATE TABLE push_dnd (
    uid         BIGINT PRIMARY KEY,
    receive_opt SMALLINT NOT NULL,
    daily_start BIGINT,
    start_time  BIGINT NOT NULL DEFAULT 0,
    duration    BIGINT NOT NULL
);
