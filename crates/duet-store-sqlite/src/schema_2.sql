-- Version 2: the MsgSeq the server picks for a message that has none, per conversation.
-- The last MsgSeq the store picked in the conversation (lo, hi): the next message without a MsgSeq gets a
-- larger one, so that messages of the same second sort in the order they were stored.
ALTER TABLE threads ADD COLUMN key_seq INTEGER NOT NULL DEFAULT 0;
-- The latest time of a message stored in the conversation: a message sent later is never dated earlier
-- (two sends racing across a second boundary could be committed in the other order), so history's order
-- by time and MsgSeq is the order in which the store took them.
ALTER TABLE threads ADD COLUMN last_time INTEGER NOT NULL DEFAULT 0;
