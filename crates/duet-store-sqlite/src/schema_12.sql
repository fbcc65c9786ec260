-- Version 12: the search index is written behind the sends (docs/adr/0004-message-search-fts5.md).
-- The writer queues each stored message's terms and indexes them later, many at once, in a transaction of
-- their own; `upto` is the id of the last message so indexed. Every message with a larger id is not in the
-- index yet (a crash lost the queue): opening the store indexes those first. Messages stored before this
-- version are all indexed.
CREATE TABLE search_mark (upto INTEGER NOT NULL);
INSERT INTO search_mark (upto) SELECT coalesce(max(id), 0) FROM messages;
