-- The search of a user's own history (src/search.rs): one row per message that can be found, holding its
-- terms as a tsvector made by the store (not by a text search configuration): `@p<uid>` for each party,
-- `@t<MsgType>` for each element's type, and the words of its text at their positions, lowercased,
-- without diacritics, every Han, kana and Hangul character a word of its own. The GIN index intersects
-- the owner's `@p` lexeme with the keywords', so a search reads one owner's matches. A message's row goes
-- with the message (the purge), and with its recall, its edit (replaced) or an account's deletion.
CREATE TABLE message_search (
    id    BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    terms TSVECTOR NOT NULL
);
CREATE INDEX message_search_terms ON message_search USING GIN (terms);
