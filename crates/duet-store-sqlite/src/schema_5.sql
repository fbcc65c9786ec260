-- Version 5: the after-event callbacks' outbox. One row per event, written in the commit of what it
-- announces; removed once the app's backend answered it. Ids are never reused (AUTOINCREMENT): an event's
-- id is what the backend drops duplicates by.
CREATE TABLE callback_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Whose event it is (a UserID, kept after the account is deleted): one user's events go out in order.
    user_id     TEXT NOT NULL,
    -- The event as JSON (duet_core::model::event::AfterEvent).
    event       TEXT NOT NULL,
    queued_at   INTEGER NOT NULL,
    -- Due at this time (unix seconds), unless held by a worker until lease_until.
    next_at     INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX callback_outbox_user ON callback_outbox (user_id, id);
