-- Version 3: a uid is never given twice. A rowid alone (`accounts.uid`) goes again to the next account once
-- the account holding the largest is deleted, and that account would inherit what still names the uid: the
-- messages in its peers' history, the conversation's counters, its peers' conversation rows.
-- The last uid given; a new account takes the next.
CREATE TABLE uid_seq (last INTEGER NOT NULL);
-- Every uid still named anywhere counts as given (an account deleted before this version may be named).
INSERT INTO uid_seq (last) SELECT max(
    (SELECT coalesce(max(uid), 0) FROM accounts),
    (SELECT coalesce(max(hi), 0) FROM threads),
    (SELECT coalesce(max(hi), 0) FROM messages),
    (SELECT coalesce(max(max(owner, peer)), 0) FROM conversations),
    (SELECT coalesce(max(uid), 0) FROM inbox)
);
