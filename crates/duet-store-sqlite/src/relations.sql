-- The relationship chain (friends, friend requests, blacklists), created at open after the versioned
-- schema. Rows name users by UserID, not by uid, so that they do not depend on the message tables; an
-- account's rows are deleted with it, in the same transaction (`ops::delete_accounts`).

-- One row per (owner, peer): peer is in owner's friend list.
CREATE TABLE IF NOT EXISTS friends (
    owner       TEXT NOT NULL,
    peer        TEXT NOT NULL,
    remark      TEXT NOT NULL DEFAULT '',
    -- Tag_SNS_IM_Group: group names, newline-separated.
    groups      TEXT NOT NULL DEFAULT '',
    add_source  TEXT NOT NULL DEFAULT '',
    add_wording TEXT NOT NULL DEFAULT '',
    add_time    INTEGER NOT NULL,
    PRIMARY KEY (owner, peer)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS friends_peer ON friends (peer);

-- Tag_SNS_Custom_* values of a friend entry.
CREATE TABLE IF NOT EXISTS friend_tags (
    owner TEXT NOT NULL,
    peer  TEXT NOT NULL,
    tag   TEXT NOT NULL,
    text  TEXT,
    num   INTEGER,
    PRIMARY KEY (owner, peer, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS friend_tags_peer ON friend_tags (peer);

-- One row per (owner, peer): peer is in owner's blacklist since time.
CREATE TABLE IF NOT EXISTS blacklist (
    owner TEXT NOT NULL,
    peer  TEXT NOT NULL,
    time  INTEGER NOT NULL,
    PRIMARY KEY (owner, peer)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blacklist_peer ON blacklist (peer);

-- Pending friend requests from requester to target.
CREATE TABLE IF NOT EXISTS friend_requests (
    requester  TEXT NOT NULL,
    target     TEXT NOT NULL,
    wording    TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',
    remark     TEXT NOT NULL DEFAULT '',
    group_name TEXT NOT NULL DEFAULT '',
    time       INTEGER NOT NULL,
    PRIMARY KEY (requester, target)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS friend_requests_target ON friend_requests (target);
