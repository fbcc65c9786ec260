-- Version 7: edits, one-sided deletes and cleared conversations.
-- How many times a message was edited (0: as sent); an edit that names an older version is a conflict.
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- New sync-log kinds (inbox.kind): 5 message msg_id was edited; 6 the user deleted message msg_id from its
-- side; 7 the user cleared its history with peer up to position time (a conv_seq; 0: nothing cleared);
-- 8 as 7, and the conversation itself was deleted.
