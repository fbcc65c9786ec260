-- Version 9: the global mute (`openconfigsvr/setnospeaking`).
-- Until when (unix seconds, that second not included) the account's one-to-one / group sends are refused:
-- 0 (or a time past) not muted, 9223372036854775807 (the largest integer) for good. Deleted with the
-- account's row, so a new account of the same UserID is not muted.
ALTER TABLE accounts ADD COLUMN c2c_mute_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN group_mute_until INTEGER NOT NULL DEFAULT 0;
