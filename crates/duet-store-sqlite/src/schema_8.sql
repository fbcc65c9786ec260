-- Version 8: each user's settings of its conversations (shared by the user's devices).
CREATE TABLE conversation_settings (
    owner       INTEGER NOT NULL,
    peer        INTEGER NOT NULL,
    -- When pinned (unix seconds); 0: not pinned. Pinned conversations list first, the latest pinned first.
    pinned_at   INTEGER NOT NULL DEFAULT 0,
    -- Tencent's marks: bit 0 star, 1 unread, 2 fold, 3 hide; bits 32-63 the app's own.
    marks       INTEGER NOT NULL DEFAULT 0,
    custom_data TEXT NOT NULL DEFAULT '',
    draft       TEXT NOT NULL DEFAULT '',
    draft_time  INTEGER NOT NULL DEFAULT 0,
    -- 0 receive; 1 do not receive; 2 receive without notification. Not 0: no push, and not counted in the
    -- user's unread total. Kept when the conversation is deleted (it is about the peer).
    receive_opt INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, peer)
) WITHOUT ROWID;
-- inbox.kind 9: the user changed its settings of the conversation with peer.
