-- Version 10: each user's do-not-disturb window over all conversations (no push while it is on).
CREATE TABLE push_dnd (
    uid         INTEGER PRIMARY KEY,
    -- 1 do not receive, 2 receive without notification (Tencent's numbers).
    receive_opt INTEGER NOT NULL,
    -- Every day from this second of the day (UTC); NULL: once, from start_time.
    daily_start INTEGER,
    start_time  INTEGER NOT NULL DEFAULT 0,
    -- Seconds; 0: always.
    duration    INTEGER NOT NULL
);
