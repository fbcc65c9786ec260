-- Duet's embedded schema, version 1. Users are interned as integer uids; a conversation is the pair
-- (lo, hi) = (min, max) of its two uids, so both directions share one index.

CREATE TABLE accounts (
    uid            INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    -- UserSigs issued before this unix second are refused (set by kick).
    revoked_before INTEGER NOT NULL DEFAULT 0,
    -- A lower bound of the last sequence number of the user's sync log: the log's own last entry is the
    -- rest; this keeps the position when a purge removes the last entries.
    log_seq        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE profiles (
    uid  INTEGER NOT NULL,
    tag  TEXT NOT NULL,
    text TEXT,
    num  INTEGER,
    PRIMARY KEY (uid, tag)
) WITHOUT ROWID;

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    sender            INTEGER NOT NULL,
    receiver          INTEGER NOT NULL,
    lo                INTEGER NOT NULL,
    hi                INTEGER NOT NULL,
    time              INTEGER NOT NULL,
    seq               INTEGER NOT NULL,
    random            INTEGER NOT NULL,
    -- Position in the conversation (lo, hi), from 1 without gaps.
    conv_seq          INTEGER NOT NULL,
    body              TEXT NOT NULL,
    cloud_custom_data TEXT NOT NULL,
    push_info         TEXT,
    -- The sender's nickname and avatar (Tag_Profile_IM_Nick, Tag_Profile_IM_Image) when it was sent.
    sender_nick       TEXT,
    sender_face       TEXT,
    -- 1 recalled, 2 not in the sender's history, 4 not in the receiver's history, 8 not counted as unread.
    flags             INTEGER NOT NULL
);
-- One message per MsgKey (MsgSeq, MsgRandom, second) per conversation; also history's order.
CREATE UNIQUE INDEX messages_conversation ON messages (lo, hi, time, seq, random);
CREATE INDEX messages_time ON messages (time);

-- The last conv_seq of each conversation.
CREATE TABLE threads (
    lo  INTEGER NOT NULL,
    hi  INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (lo, hi)
) WITHOUT ROWID;

-- Each user's sync log: what the user's devices have to receive, in order, until it expires.
-- kind 0: message msg_id; 1: the user read what peer sent up to time; 2: message msg_id was recalled.
-- For kinds 0 and 2, time is the message's: an entry whose message expired first (and whose rowid a new
-- message may have taken) finds no message and is skipped, until the entry itself expires.
CREATE TABLE inbox (
    uid       INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    kind      INTEGER NOT NULL,
    msg_id    INTEGER,
    peer      INTEGER,
    time      INTEGER,
    expire_at INTEGER NOT NULL,
    PRIMARY KEY (uid, seq)
) WITHOUT ROWID;
CREATE INDEX inbox_expire ON inbox (expire_at);

-- One row per (owner, peer): the owner's side of a conversation.
CREATE TABLE conversations (
    owner       INTEGER NOT NULL,
    peer        INTEGER NOT NULL,
    last_msg_id INTEGER,
    last_time   INTEGER NOT NULL DEFAULT 0,
    unread      INTEGER NOT NULL DEFAULT 0,
    read_time   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, peer)
) WITHOUT ROWID;
-- No index on last_time: an owner has at most ~100 rows (recent contacts), sorted when listed, and the
-- purge finds expiring conversations from their expiring messages. Every send updates two rows here.

-- Recent sends by content hash, so a retry returns the first result. Rows are appended in send order
-- and have no index on their random keys (each insert would dirty a random page of it): the writer keeps
-- that index in memory, loaded from here at start; the purge cuts the oldest rows by id.
CREATE TABLE dedup (
    id         INTEGER PRIMARY KEY,
    key        BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    random     INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    -- Recipients that did not exist, newline-separated.
    failed     TEXT NOT NULL,
    conv_seq   INTEGER NOT NULL,
    log_seq    INTEGER NOT NULL
);
