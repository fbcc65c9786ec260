-- Accounts and profiles. Users are interned as bigint uids, never given twice (an identity column), so a
-- deleted account's uid named by old rows is never inherited by a new account of the same UserID.
-- Every per-user table below and in the other files is keyed by its owning user first, so that the schema
-- can be distributed by user later (docs/scale-out.md).

CREATE TABLE accounts (
    uid              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    -- UserSigs issued before this unix second are refused (set by kick).
    revoked_before   BIGINT NOT NULL DEFAULT 0,
    -- The last sequence number of the user's sync log. A write appending entries updates it under the
    -- row's lock, so two nodes writing for one user at once take consecutive numbers (ADR 0005).
    log_seq          BIGINT NOT NULL DEFAULT 0,
    -- Until when (unix seconds, that second excluded) the account's sends are refused; 0: not muted.
    c2c_mute_until   BIGINT NOT NULL DEFAULT 0,
    group_mute_until BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE profiles (
    uid  BIGINT NOT NULL,
    tag  TEXT NOT NULL,
    text TEXT,
    num  BIGINT,
    PRIMARY KEY (uid, tag)
);
