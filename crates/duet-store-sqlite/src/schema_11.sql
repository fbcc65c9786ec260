-- Version 11: the search of a user's own history (docs/adr/0004-message-search-fts5.md).
-- A contentless FTS5 index, one row per message that can be found, by the message's rowid: the text is
-- in `messages.body` already, so the index stores only its terms (no second copy of the text), and
-- `contentless_delete` lets a row be removed or replaced by rowid alone (an edit, a recall, a purge, an
-- account's deletion).
-- parties: `p<uid>` of the sender and of the recipient (a search is of one owner's messages);
-- types: each element's MsgType; text: the text the message shows (duet_core::model::Searchable), with
-- every Han, kana and Hangul character a token of its own (the unicode61 tokenizer would take a run of
-- them as one word), so that a keyword of one or two characters is found as a phrase.
CREATE VIRTUAL TABLE message_search USING fts5(
    parties, types, text,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- A message that goes (the purge) takes its index row along, whatever deleted it.
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;
