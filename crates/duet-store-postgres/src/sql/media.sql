-- Uploaded files' metadata (duet_core::media); the blobs are elsewhere (a directory, or an object store).
CREATE TABLE media (
    uuid         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    owner        TEXT NOT NULL,
    size         BIGINT NOT NULL,
    file_name    TEXT NOT NULL,
    url          TEXT NOT NULL,
    image_format INTEGER,
    created      BIGINT NOT NULL,
    last_used    BIGINT NOT NULL
);
CREATE INDEX media_last_used ON media (last_used);

CREATE TABLE media_renditions (
    uuid   TEXT NOT NULL REFERENCES media (uuid) ON DELETE CASCADE,
    type   INTEGER NOT NULL,
    width  BIGINT NOT NULL,
    height BIGINT NOT NULL,
    size   BIGINT NOT NULL,
    blob   TEXT NOT NULL,
    PRIMARY KEY (uuid, type)
);

CREATE TABLE media_grants (
    uuid    TEXT NOT NULL REFERENCES media (uuid) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (uuid, user_id)
);
CREATE INDEX media_grants_user ON media_grants (user_id);

CREATE TABLE media_uploads (
    uuid    TEXT PRIMARY KEY,
    started BIGINT NOT NULL
);
CREATE INDEX media_uploads_started ON media_uploads (started);

CREATE TABLE media_doomed (
    blob TEXT PRIMARY KEY
);
