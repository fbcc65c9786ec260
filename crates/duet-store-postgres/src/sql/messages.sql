-- Messages, conversations and the sync logs. A conversation is the pair (lo, hi) = (min, max) of its two
-- uids, so both directions share one index.

CREATE TABLE messages (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender            BIGINT NOT NULL,
    receiver          BIGINT NOT NULL,
    lo                BIGINT NOT NULL,
    hi                BIGINT NOT NULL,
    time              BIGINT NOT NULL,
    seq               BIGINT NOT NULL,
    random            BIGINT NOT NULL,
    -- Position in the conversation (lo, hi), from 1 without gaps.
    conv_seq          BIGINT NOT NULL,
    body              TEXT NOT NULL,
    cloud_custom_data TEXT NOT NULL,
    push_info         TEXT,
    -- The sender's nickname and avatar (Tag_Profile_IM_Nick, Tag_Profile_IM_Image) when it was sent.
    sender_nick       TEXT,
    sender_face       TEXT,
    -- 1 recalled, 2 not in the sender's history, 4 not in the receiver's history, 8 not counted as unread,
    -- 16 wants a read receipt.
    flags             INTEGER NOT NULL,
    -- Who recalled it (the sender's UserID or the admin's); NULL while not recalled.
    revoker           TEXT,
    -- When the recipient acknowledged it (flag 16), unix seconds.
    receipt_time      BIGINT,
    -- Edits so far (0: as sent).
    version           INTEGER NOT NULL DEFAULT 0
);
-- One message per MsgKey (MsgSeq, MsgRandom, second) per conversation; also history's order.
CREATE UNIQUE INDEX messages_conversation ON messages (lo, hi, time, seq, random);
-- The export's order (time, id), and the purge's range.
CREATE INDEX messages_time ON messages (time, id);

-- Per conversation: the last conv_seq, the last MsgSeq the store picked, and the latest message time.
CREATE TABLE threads (
    lo        BIGINT NOT NULL,
    hi        BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    key_seq   BIGINT NOT NULL DEFAULT 0,
    last_time BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (lo, hi)
);

-- Each user's sync log (kinds as in the embedded store: 0 message, 1 read, 2 recalled, 3 peer read,
-- 4 receipt, 5 edited, 6 deleted from one side, 7 cleared, 8 cleared and deleted, 9 settings).
CREATE TABLE inbox (
    uid       BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    kind      SMALLINT NOT NULL,
    msg_id    BIGINT,
    peer      BIGINT,
    time      BIGINT,
    expire_at BIGINT NOT NULL,
    PRIMARY KEY (uid, seq)
);
CREATE INDEX inbox_expire ON inbox (expire_at);

-- One row per (owner, peer): the owner's side of a conversation.
CREATE TABLE conversations (
    owner       BIGINT NOT NULL,
    peer        BIGINT NOT NULL,
    last_msg_id BIGINT,
    last_time   BIGINT NOT NULL DEFAULT 0,
    unread      BIGINT NOT NULL DEFAULT 0,
    read_time   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, peer)
);

-- Each user's settings of its conversations.
CREATE TABLE conversation_settings (
    owner       BIGINT NOT NULL,
    peer        BIGINT NOT NULL,
    pinned_at   BIGINT NOT NULL DEFAULT 0,
    marks       BIGINT NOT NULL DEFAULT 0,
    custom_data TEXT NOT NULL DEFAULT '',
    draft       TEXT NOT NULL DEFAULT '',
    draft_time  BIGINT NOT NULL DEFAULT 0,
    receive_opt SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, peer)
);

-- Recent sends by content hash, so a retry returns the first result; unique, so two nodes taking the same
-- retry at once store it once (the second waits for the first's commit, then finds it).
CREATE TABLE dedup (
    sender     BIGINT NOT NULL,
    key        BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    random     BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    -- Recipients that did not exist, newline-separated.
    failed     TEXT NOT NULL,
    conv_seq   BIGINT NOT NULL,
    log_seq    BIGINT NOT NULL,
    PRIMARY KEY (sender, key)
);
CREATE INDEX dedup_created ON dedup (created_ms);
