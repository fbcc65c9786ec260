-- Uploaded files (duet_core::media). Executed at every open; only ever extended additively.
CREATE TABLE IF NOT EXISTS media (
    uuid       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    owner      TEXT NOT NULL,
    size       INTEGER NOT NULL,
    file_name  TEXT NOT NULL,
    -- Unused (URLs are built when answering, from the configuration); kept empty.
    url        TEXT NOT NULL,
    -- Images: Tencent's ImageFormat; NULL for other kinds.
    image_format INTEGER,
    created    INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS media_last_used ON media (last_used);

-- The renditions of an image: 1 original, 2 large, 3 thumbnail.
CREATE TABLE IF NOT EXISTS media_renditions (
    uuid   TEXT NOT NULL REFERENCES media (uuid) ON DELETE CASCADE,
    type   INTEGER NOT NULL,
    width  INTEGER NOT NULL,
    height INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    blob   TEXT NOT NULL,
    PRIMARY KEY (uuid, type)
) STRICT, WITHOUT ROWID;

-- Who besides the uploader and the admins may read an upload: the two sides of each message referring to it.
CREATE TABLE IF NOT EXISTS media_grants (
    uuid TEXT NOT NULL REFERENCES media (uuid) ON DELETE CASCADE,
    user TEXT NOT NULL,
    PRIMARY KEY (uuid, user)
) STRICT, WITHOUT ROWID;
-- For deleting an account's grants.
CREATE INDEX IF NOT EXISTS media_grants_user ON media_grants (user);

-- Uploads begun and not yet recorded in `media`: if one never is (the request was dropped, the server
-- stopped), the purge dooms whatever blobs it may have written.
CREATE TABLE IF NOT EXISTS media_uploads (
    uuid    TEXT PRIMARY KEY,
    started INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS media_uploads_started ON media_uploads (started);

-- Blobs whose item is gone, to delete; a key stays here until its blob is deleted, so that a failed or
-- interrupted deletion is retried by the next purge.
CREATE TABLE IF NOT EXISTS media_doomed (
    blob TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
