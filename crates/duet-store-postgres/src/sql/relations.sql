-- The relationship chain. Rows name users by UserID (as the embedded store does); an account's rows are
-- deleted with it, in the same transaction.

CREATE TABLE friends (
    owner       TEXT NOT NULL,
    peer        TEXT NOT NULL,
    remark      TEXT NOT NULL DEFAULT '',
    -- Tag_SNS_IM_Group: group names, newline-separated.
    groups      TEXT NOT NULL DEFAULT '',
    add_source  TEXT NOT NULL DEFAULT '',
    add_wording TEXT NOT NULL DEFAULT '',
    add_time    BIGINT NOT NULL,
    PRIMARY KEY (owner, peer)
);
CREATE INDEX friends_peer ON friends (peer);

CREATE TABLE friend_tags (
    owner TEXT NOT NULL,
    peer  TEXT NOT NULL,
    tag   TEXT NOT NULL,
    text  TEXT,
    num   BIGINT,
    PRIMARY KEY (owner, peer, tag)
);
CREATE INDEX friend_tags_peer ON friend_tags (peer);

CREATE TABLE blacklist (
    owner TEXT NOT NULL,
    peer  TEXT NOT NULL,
    time  BIGINT NOT NULL,
    PRIMARY KEY (owner, peer)
);
CREATE INDEX blacklist_peer ON blacklist (peer);

CREATE TABLE friend_requests (
    requester  TEXT NOT NULL,
    target     TEXT NOT NULL,
    wording    TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',
    remark     TEXT NOT NULL DEFAULT '',
    group_name TEXT NOT NULL DEFAULT '',
    time       BIGINT NOT NULL,
    PRIMARY KEY (requester, target)
);
CREATE INDEX friend_requests_target ON friend_requests (target);
