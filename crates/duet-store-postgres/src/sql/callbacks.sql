-- The after-event callbacks' outbox: one row per event, written in the commit of what it announces.
-- Ids are never reused (an identity column): an event's id is what the app's backend drops duplicates by.
CREATE TABLE callback_outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT NOT NULL,
    event       TEXT NOT NULL,
    queued_at   BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX callback_outbox_user ON callback_outbox (user_id, id);
